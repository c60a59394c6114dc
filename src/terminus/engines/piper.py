"""Text to speech with Piper voices (VITS exported to ONNX, espeak-ng phonemes).

The card's files are the voice (``*.onnx``) and its config (``*.onnx.json``). Text is
split into sentences (and over-long sentences into clauses) before synthesis, so any
length works and the first sentence can play while the rest is made.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from terminus.engines.base import Availability, LoadOptions
from terminus.engines.llamacpp import default_threads
from terminus.engines.speech_base import check_loadable, probe_modules
from terminus.engines.text_split import split_sentences
from terminus.errors import (
    EngineError,
    InvalidParameterError,
)
from terminus.models.cache import ModelFiles
from terminus.models.card import ModelCard
from terminus.types import CancelToken
from terminus.types.common import Capability
from terminus.types.speech import SpeakRequest, SpeechChunk

#: ONNX Runtime's arena and the VITS activations for one sentence, beyond the weights.
_WORKING_BYTES = 150 * 1024 * 1024


class PiperEngine:
    name: ClassVar[str] = "piper"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.TTS})

    @classmethod
    def probe(cls) -> Availability:
        return probe_modules(
            ("piper", "onnxruntime"),
            "piper-tts",
            "Piper voices (ONNX Runtime, espeak-ng)",
            "speech",
        )

    def estimate_memory(self, card: ModelCard, files: ModelFiles, options: LoadOptions) -> int:
        return _voice_paths(card, files)[0].stat().st_size + _WORKING_BYTES

    def load(self, card: ModelCard, files: ModelFiles, options: LoadOptions) -> PiperTTSModel:
        check_loadable(self.name, self.probe(), card, Capability.TTS)
        import onnxruntime
        from piper import PiperVoice
        from piper.config import PiperConfig

        onnx_path, config_path = _voice_paths(card, files)
        threads = options.threads or default_threads()
        try:
            config = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
            session_options = onnxruntime.SessionOptions()
            session_options.intra_op_num_threads = threads
            session_options.inter_op_num_threads = 1
            session = onnxruntime.InferenceSession(
                str(onnx_path), sess_options=session_options, providers=["CPUExecutionProvider"]
            )
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise EngineError(f"could not load {card.id}: {exc}") from exc
        voice = PiperVoice(session=session, config=config)
        return PiperTTSModel(card, voice, self.estimate_memory(card, files, options))


class PiperTTSModel:
    def __init__(self, card: ModelCard, voice: Any, memory_bytes: int) -> None:
        self.card = card
        self.voice = voice
        self.memory_bytes = memory_bytes
        self.sample_rate = int(voice.config.sample_rate)

    def close(self) -> None:
        self.voice = None

    def speak(self, request: SpeakRequest, cancel: CancelToken) -> Iterator[SpeechChunk]:
        from piper.config import SynthesisConfig

        voice = self.voice
        if voice is None:
            raise EngineError(f"{self.card.id} was unloaded")
        speakers = int(voice.config.num_speakers)
        if request.speaker is not None and request.speaker >= max(speakers, 1):
            raise InvalidParameterError(
                f"{self.card.id} has {speakers} speaker(s); speaker {request.speaker} does not exist"
            )
        config = SynthesisConfig(
            speaker_id=request.speaker,
            length_scale=float(voice.config.length_scale) / request.speed,
        )
        index = 0
        for piece in split_sentences(request.text):
            if cancel.cancelled:
                return
            try:
                chunks = list(voice.synthesize(piece, syn_config=config))
            except (RuntimeError, ValueError) as exc:
                raise EngineError(f"{self.card.id} failed on {piece[:40]!r}: {exc}") from exc
            for chunk in chunks:
                yield SpeechChunk(
                    index=index,
                    text=piece,
                    pcm=chunk.audio_int16_bytes,
                    sample_rate=self.sample_rate,
                )
                index += 1


def _voice_paths(card: ModelCard, files: ModelFiles) -> tuple[Path, Path]:
    onnx = next((p for n, p in files.paths.items() if n.endswith(".onnx")), None)
    config = next((p for n, p in files.paths.items() if n.endswith(".onnx.json")), None)
    if onnx is None or config is None:
        raise EngineError(f"{card.id}: a Piper voice needs a .onnx file and its .onnx.json config")
    return onnx, config
