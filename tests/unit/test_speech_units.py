"""Pure pieces of the speech, OCR and translation stack: no model needed."""

from __future__ import annotations

import numpy as np
import pytest

from terminus.client.media import audio_payload, image_payload
from terminus.client.speech_stream import TranscriptionSession
from terminus.engines.audio import decode_request_audio, resample
from terminus.engines.text_split import split_sentences
from terminus.errors import InvalidAudioError, InvalidImageError, UnsupportedLanguageError
from terminus.runtime.language import language_name, normalize_code
from terminus.types.reading_order import join_lines, reading_order
from terminus.types.speech import (
    OcrBlock,
    Segment,
    Speech,
    TranscribeRequest,
    Transcription,
    TranslateRequest,
)


def test_sentences_and_overlong_clauses() -> None:
    assert split_sentences("One. Two!  Three?\n\nFour") == ["One.", "Two!", "Three?", "Four"]
    long = ", ".join(["word " * 20] * 10)
    pieces = split_sentences(long, max_chars=120)
    assert all(len(p) <= 120 for p in pieces) and len(pieces) >= 9
    assert " ".join(pieces).split() == long.split()
    assert split_sentences("x" * 250, max_chars=100) == ["x" * 100, "x" * 100, "x" * 50]


def _block(text: str, x: float, y: float, w: float = 80, h: float = 20) -> OcrBlock:
    box = ((x, y), (x + w, y), (x + w, y + h), (x, y + h))
    return OcrBlock(text=text, box=box, confidence=0.9)


def test_reading_order_groups_lines() -> None:
    blocks = [
        _block("c", 10, 100),
        _block("b", 200, 12),
        _block("a", 10, 10),
        _block("d", 200, 104),
    ]
    assert [b.text for b in reading_order(blocks)] == ["a", "b", "c", "d"]
    assert join_lines(blocks) == "a b\nc d"


def test_subtitles() -> None:
    result = Transcription(
        model="m",
        text="hi there",
        segments=(
            Segment(start=0.0, end=1.5, text=" hi"),
            Segment(start=61.25, end=3723.0, text=" there"),
        ),
        language="en",
        language_probability=1.0,
        duration_s=3723.0,
        total_s=0.1,
    )
    assert result.srt().splitlines()[:3] == ["1", "00:00:00,000 --> 00:00:01,500", "hi"]
    assert "00:01:01.250 --> 01:02:03.000\nthere" in result.vtt()


def test_requests_serialize_round_trip() -> None:
    """Peers send these as JSON: bytes survive the trip."""
    request = TranscribeRequest(
        model="m", audio=b"\x00\xff" * 4, audio_format="pcm_s16le", sample_rate=8000
    )
    assert TranscribeRequest.model_validate_json(request.model_dump_json()) == request
    speech = Speech(model="v", pcm=b"\x01\x00" * 100, sample_rate=100, chunks=1, total_s=0.0)
    assert Speech.model_validate_json(speech.model_dump_json()) == speech
    assert speech.duration_s == 1.0 and speech.wav_bytes()[:4] == b"RIFF"
    with pytest.raises(ValueError):
        TranslateRequest(model="m", text="", target="fr")


def test_audio_payloads() -> None:
    data, fmt, rate = audio_payload(np.zeros(10, dtype=np.int16), None)
    assert (len(data), fmt, rate) == (20, "pcm_s16le", 16000)
    data, fmt, rate = audio_payload(np.zeros((10, 2), dtype=np.float64), 8000)
    assert (len(data), fmt, rate) == (40, "pcm_f32le", 8000)
    assert audio_payload(b"RIFF....", None)[1] == "file"
    with pytest.raises(InvalidAudioError):
        audio_payload(np.zeros(4, dtype=np.uint8), None)
    with pytest.raises(InvalidAudioError):
        audio_payload(object(), None)


def test_pcm_decoding_and_resampling() -> None:
    pcm = (np.sin(np.arange(8000) / 10) * 10000).astype("<i2")
    request = TranscribeRequest(
        model="m", audio=pcm.tobytes(), audio_format="pcm_s16le", sample_rate=8000
    )
    samples = decode_request_audio(request)
    assert samples.dtype == np.float32 and samples.size == 16000
    assert abs(float(samples.max()) - 10000 / 32768) < 0.01
    assert resample(np.ones(3, dtype=np.float32), 16000, 16000).size == 3
    for bad in (
        TranscribeRequest(model="m", audio=b"\x00" * 3, audio_format="pcm_s16le", sample_rate=8000),
        TranscribeRequest(model="m", audio=b"\x00" * 4, audio_format="pcm_s16le"),
        TranscribeRequest(
            model="m",
            audio=np.array([np.nan], "<f4").tobytes(),
            audio_format="pcm_f32le",
            sample_rate=8000,
        ),
        TranscribeRequest(model="m", audio=b""),
    ):
        with pytest.raises(InvalidAudioError):
            decode_request_audio(bad)


def test_image_payloads() -> None:
    png = image_payload(np.zeros((4, 5, 3), dtype=np.uint8))
    assert png.startswith(b"\x89PNG")
    with pytest.raises(InvalidImageError):
        image_payload(np.zeros((4, 5), dtype=np.float32))


def test_language_codes() -> None:
    assert normalize_code("fr-FR") == normalize_code("FR_fr") == "fr"
    assert language_name("de") == "German"
    with pytest.raises(UnsupportedLanguageError):
        language_name("xx")


class _ScriptedClient:
    """Stands in for Terminus: says how many samples each transcription saw."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def transcribe(self, audio: np.ndarray, *, model: str, **kwargs: object) -> Transcription:
        self.calls.append(audio.size)
        return Transcription(
            model=model, text=f"{audio.size} samples", segments=(), language="en",
            language_probability=1.0, duration_s=audio.size / 16000, total_s=0.0,
        )  # fmt: skip


def test_session_cuts_turns_on_silence() -> None:
    rate = 16000
    tone = (0.3 * np.sin(np.arange(int(2.5 * rate)) / 5)).astype(np.float32)
    silence = np.zeros(rate, dtype=np.float32)
    audio = np.concatenate([silence, tone, silence, tone[: rate // 2], silence])
    client = _ScriptedClient()
    session = TranscriptionSession(client, "m", rate)  # type: ignore[arg-type]
    events = []
    for start in range(0, audio.size, 1600):
        events += session.write(audio[start : start + 1600])
    events += session.close()
    finals = [e for e in events if e.kind == "final"]
    assert len(finals) == 2
    assert finals[0].start == pytest.approx(1.0, abs=0.05)
    assert finals[0].end == pytest.approx(1.0 + 2.5 + 0.6, abs=0.1)  # speech + end silence
    # every second of a turn: at 1, 2 and 3 s of the first (3.1 s), at 1 s of the second
    assert [e.kind for e in events] == ["partial"] * 3 + ["final", "partial", "final"]
    assert session.text == " ".join(e.text for e in finals)


def test_session_finalises_on_close_and_rejects_bad_chunks() -> None:
    client = _ScriptedClient()
    session = TranscriptionSession(client, "m", 16000, partial_every_s=100)  # type: ignore[arg-type]
    assert session.write(np.full(8000, 8000, dtype=np.int16)) == []
    (final,) = session.close()
    assert final.kind == "final" and client.calls == [7680]  # whole 30 ms frames only
    with pytest.raises(InvalidAudioError):
        session.write(np.zeros((2, 2), dtype=np.float32))
