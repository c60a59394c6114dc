"""Speech, voice and OCR through Terminus vs the engines called directly, in one run.

Prints ratios (Terminus / direct speed), interleaved round by round so that machine
noise hits both sides alike. Not a test: nothing here asserts timings.

    python bench/bench_speech.py [--rounds 5] [--threads 1]

- STT: real-time factor of faster-whisper tiny.en on ~25 s of Piper speech
  (``WhisperModel.transcribe`` directly vs ``Terminus.transcribe`` of the WAV bytes).
- TTS: real-time factor of the Piper voice (``PiperVoice.synthesize`` vs ``Terminus.speak``).
- OCR: images/s of RapidOCR on rendered lines (``RapidOCR(...)(image)`` vs ``Terminus.ocr``).
- Memory: resident-set growth when each model is loaded in a fresh process.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "speech"))

TEXT = (
    "The scientist recorded the temperature every hour for three days. "
    "Our team finished the project two days ahead of schedule. "
    "Please call Stella and ask her to bring these things with her from the store. "
    "Turn left at the second traffic light and park behind the library. "
    "The river flows quietly through the small green valley. "
    "Remember to water the plants while I am away on vacation."
)
STT, TTS, OCR = "whisper-tiny.en", "en_us-joe-medium", "pp-ocrv6-small"


def _median_ratio(pairs: list[tuple[float, float]]) -> tuple[float, float, float]:
    direct = statistics.median(d for d, _ in pairs)
    ours = statistics.median(t for _, t in pairs)
    return direct, ours, direct / ours  # speed ratio: >1 means Terminus is faster


def bench(rounds: int, threads: int) -> dict[str, Any]:
    import numpy as np
    from faster_whisper import WhisperModel
    from faster_whisper.audio import decode_audio
    from rapidocr import RapidOCR
    from speechkit import OCR_LINES, render_line

    from terminus import Terminus

    home = tempfile.mkdtemp(prefix="bench-speech-")
    with Terminus(home=home, allow_download=False, memory_budget="4G") as t:
        for model in (STT, TTS, OCR):
            t.load_model(model, threads=threads)
        stt_dir = str(t.cache.files(t.catalog.get(STT)).paths["model.bin"].parent)
        voice = t.manager.use(TTS).__enter__().voice  # the same PiperVoice Terminus loaded
        whisper = WhisperModel(stt_dir, device="cpu", compute_type="int8", cpu_threads=threads)
        ocr_files = t.cache.files(t.catalog.get(OCR)).paths
        rapid = RapidOCR(
            params={
                "Global.log_level": "error",
                "Det.model_path": str(ocr_files["PP-OCRv6_det_small.onnx"]),
                "Rec.model_path": str(ocr_files["PP-OCRv6_rec_small.onnx"]),
                "Cls.model_path": str(ocr_files["ch_ppocr_mobile_v2.0_cls_mobile.onnx"]),
                "Det.limit_type": "max",
                "Det.limit_side_len": 2000,
                "EngineConfig.onnxruntime.intra_op_num_threads": threads,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            }
        )
        wav = t.speak(TEXT, model=TTS).wav_bytes()
        audio_s = len(decode_audio(io.BytesIO(wav))) / 16000
        images = [render_line(line, "roboto") for line in OCR_LINES[:6]]

        def direct_stt() -> float:
            started = time.perf_counter()
            segments, _ = whisper.transcribe(
                decode_audio(io.BytesIO(wav)), language="en", beam_size=5
            )
            list(segments)
            return time.perf_counter() - started

        def ours_stt() -> float:
            started = time.perf_counter()
            t.transcribe(wav, model=STT)
            return time.perf_counter() - started

        def direct_tts() -> tuple[float, float]:
            from piper.config import SynthesisConfig

            started = time.perf_counter()
            samples = sum(
                c.audio_int16_array.size
                for c in voice.synthesize(TEXT, syn_config=SynthesisConfig())
            )
            return time.perf_counter() - started, samples / voice.config.sample_rate

        def ours_tts() -> tuple[float, float]:
            started = time.perf_counter()
            speech = t.speak(TEXT, model=TTS)
            return time.perf_counter() - started, speech.duration_s

        def direct_ocr() -> float:
            from PIL import Image

            started = time.perf_counter()
            for image in images:
                rapid(Image.open(io.BytesIO(image)).convert("RGB"))
            return time.perf_counter() - started

        def ours_ocr() -> float:
            started = time.perf_counter()
            for image in images:
                t.ocr(image, model=OCR)
            return time.perf_counter() - started

        direct_stt(), ours_stt(), direct_tts(), ours_tts(), direct_ocr(), ours_ocr()  # warm up
        stt, tts, ocr = [], [], []
        for i in range(rounds):
            order = (0, 1) if i % 2 == 0 else (1, 0)  # alternate who goes first
            pair: list[Any] = [None, None]
            for side in order:
                pair[side] = (direct_stt, ours_stt)[side]()
            stt.append((audio_s / pair[0], audio_s / pair[1]))  # seconds of audio per second
            for side in order:
                pair[side] = (direct_tts, ours_tts)[side]()
            tts.append((pair[0][1] / pair[0][0], pair[1][1] / pair[1][0]))
            for side in order:
                pair[side] = (direct_ocr, ours_ocr)[side]()
            ocr.append((len(images) / pair[0], len(images) / pair[1]))
        del np
    return {"audio_s": audio_s, "stt": stt, "tts": tts, "ocr": ocr}


MEMORY_CHILD = """
import json, os, sys, psutil
from terminus import Terminus
t = Terminus(home=sys.argv[1], allow_download=False, memory_budget="4G")
t.cache.files(t.catalog.get(sys.argv[2])) if t.cache.is_cached(t.catalog.get(sys.argv[2])) else t.models.pull(sys.argv[2])
before = psutil.Process().memory_info().rss
info = t.load_model(sys.argv[2], threads=1)
if sys.argv[2].startswith("whisper"):
    import numpy as np
    t.transcribe(sys.argv[2], np.zeros(16000, dtype=np.float32) + 0.1)
elif sys.argv[2].startswith("pp-"):
    from PIL import Image
    t.ocr(sys.argv[2], Image.new("RGB", (400, 100), "white"))
else:
    t.speak(sys.argv[2], "Warm up.")
after = psutil.Process().memory_info().rss
print(json.dumps({"rss": after - before, "estimate": info.memory_bytes}))
"""


def memory(home: str) -> dict[str, dict[str, int]]:
    figures = {}
    for model in (STT, "whisper-base", TTS, OCR):
        out = subprocess.run(
            [sys.executable, "-c", MEMORY_CHILD, home, model],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "TERMINUS_THREADS": "1"},
        )
        figures[model] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    print(
        f"bench_speech: {'load {:.2f} {:.2f} {:.2f}'.format(*os.getloadavg())}, {os.cpu_count()} CPUs",
        flush=True,
    )
    result = bench(args.rounds, args.threads)
    print(
        f"{args.rounds} interleaved rounds, {args.threads} thread(s); speech: {result['audio_s']:.1f} s"
        f"; {'load {:.2f} {:.2f} {:.2f}'.format(*os.getloadavg())}"
    )
    print(f"{'':6} {'direct':>10} {'terminus':>10} {'terminus/direct':>16}")
    for name, unit in (("stt", "x realtime"), ("tts", "x realtime"), ("ocr", "images/s")):
        direct, ours, ratio = _median_ratio(result[name])
        print(f"{name:6} {direct:10.2f} {ours:10.2f} {1 / ratio:16.3f}   ({unit}, medians)")
    home = tempfile.mkdtemp(prefix="bench-speech-mem-")
    print("\nmemory per loaded model (fresh process, RSS growth after load + one call):")
    for model, figure in memory(home).items():
        print(
            f"  {model:18} {figure['rss'] / 2**20:7.0f} MiB   (estimate {figure['estimate'] / 2**20:.0f} MiB)"
        )


if __name__ == "__main__":
    main()
