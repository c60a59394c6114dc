"""Requests and results for speech-to-text, text-to-speech, OCR and translation.

Every type is a frozen pydantic model holding only plain data (audio and images as
bytes), so a peer transport can send it as JSON or msgpack unchanged; numpy views
are built on demand by the helper methods.
"""

from __future__ import annotations

import io
import wave
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import numpy as np

#: Audio and images travel as base64 in JSON (peers and servers send these types as is).
_FROZEN = ConfigDict(frozen=True, extra="forbid", ser_json_bytes="base64", val_json_bytes="base64")

#: How the bytes of an audio payload are laid out: an encoded file (wav, mp3, flac,
#: ogg…, decoded by the engine) or raw mono PCM at ``sample_rate``.
AudioFormat = Literal["file", "pcm_f32le", "pcm_s16le"]

# --- speech to text ------------------------------------------------------------------


class TranscribeRequest(BaseModel):
    model_config = _FROZEN
    model: str
    audio: bytes
    audio_format: AudioFormat = "file"
    sample_rate: int | None = Field(default=None, gt=0, le=384_000)  # raw PCM only
    language: str | None = None  # None: detect
    task: Literal["transcribe", "translate"] = "transcribe"
    word_timestamps: bool = False
    initial_prompt: str | None = None
    hotwords: str | None = None
    beam_size: int | None = Field(default=None, ge=1, le=16)
    vad_filter: bool = False


class Word(BaseModel):
    model_config = _FROZEN
    start: float
    end: float
    word: str
    probability: float


class Segment(BaseModel):
    model_config = _FROZEN
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()


class Transcription(BaseModel):
    model_config = _FROZEN
    model: str
    text: str
    segments: tuple[Segment, ...]
    language: str
    language_probability: float
    duration_s: float  # of the audio
    total_s: float  # wall time spent

    def srt(self) -> str:
        return "\n".join(
            f"{i}\n{_stamp(s.start, ',')} --> {_stamp(s.end, ',')}\n{s.text.strip()}\n"
            for i, s in enumerate(self.segments, 1)
        )

    def vtt(self) -> str:
        cues = "\n".join(
            f"{_stamp(s.start, '.')} --> {_stamp(s.end, '.')}\n{s.text.strip()}\n"
            for s in self.segments
        )
        return "WEBVTT\n\n" + cues


def _stamp(seconds: float, decimal: str) -> str:
    millis = round(max(seconds, 0.0) * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"


# --- text to speech ------------------------------------------------------------------


class SpeakRequest(BaseModel):
    model_config = _FROZEN
    model: str
    text: str = Field(min_length=1)
    speed: float = Field(default=1.0, gt=0.1, le=10.0)  # >1 speaks faster
    speaker: int | None = Field(default=None, ge=0)


class SpeechChunk(BaseModel):
    """One sentence (or piece of a long sentence) of speech: 16-bit mono PCM."""

    model_config = _FROZEN
    index: int
    text: str
    pcm: bytes  # little-endian int16, mono
    sample_rate: int

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / 2 / self.sample_rate


class Speech(BaseModel):
    """A whole utterance: int16 mono PCM at ``sample_rate``, and the chunks it was made of."""

    model_config = _FROZEN
    model: str
    pcm: bytes
    sample_rate: int
    chunks: int
    total_s: float

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / 2 / self.sample_rate

    def samples(self) -> np.ndarray[Any, Any]:
        """Float32 samples in [-1, 1]."""
        import numpy as np

        return np.frombuffer(self.pcm, dtype="<i2").astype(np.float32) / 32768.0

    def wav_bytes(self) -> bytes:
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(self.sample_rate)
            wav.writeframes(self.pcm)
        return buffer.getvalue()


# --- OCR -------------------------------------------------------------------------------


class OcrRequest(BaseModel):
    model_config = _FROZEN
    model: str
    image: bytes  # an encoded image file (PNG, JPEG, …)
    min_confidence: float | None = Field(default=None, ge=0.0, le=1.0)


Point = tuple[float, float]


class OcrBlock(BaseModel):
    model_config = _FROZEN
    text: str
    box: tuple[Point, Point, Point, Point]  # clockwise from top-left, in pixels
    confidence: float


class OcrResult(BaseModel):
    model_config = _FROZEN
    model: str
    blocks: tuple[OcrBlock, ...]  # in reading order: top to bottom, then left to right
    width: int
    height: int
    total_s: float

    @property
    def text(self) -> str:
        """Blocks on one visual line joined by spaces, lines by newlines."""
        from terminus.types.reading_order import join_lines

        return join_lines(self.blocks)


# --- translation -----------------------------------------------------------------------


class TranslateRequest(BaseModel):
    model_config = _FROZEN
    model: str
    text: str = Field(min_length=1)
    source: str | None = None  # ISO 639-1; None: detect
    target: str = Field(min_length=2)
    max_tokens: int | None = Field(default=None, ge=1)


class Translation(BaseModel):
    """A whole translation; ``source_detected`` says whether the source language was guessed."""

    model_config = _FROZEN
    model: str
    text: str
    source: str
    target: str
    source_detected: bool
    total_s: float


# --- streaming transcription --------------------------------------------------------------


class TranscriptEvent(BaseModel):
    """From a streaming session: ``partial`` text of the turn so far, or its ``final`` text.

    ``start``/``end`` are seconds since the session started.
    """

    model_config = _FROZEN
    kind: Literal["partial", "final"]
    text: str
    start: float
    end: float
