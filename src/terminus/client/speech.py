"""Speech to text, text to speech, OCR and translation on the client (sync and asyncio).

``Terminus`` inherits :class:`SpeechMixin`; ``AsyncTerminus`` inherits
:class:`AsyncSpeechMixin`, which runs the same methods in threads.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from terminus.client.media import AudioLike, ImageLike, audio_payload, image_payload
from terminus.client.model_arg import model_keyword
from terminus.client.streams import AsyncCompletionStream, CompletionStream
from terminus.engines.speech_base import TranscribeProgress
from terminus.errors import InvalidParameterError
from terminus.runtime.language import normalize_code
from terminus.types import CancelToken, ChatEvent
from terminus.types.chat import validation_message
from terminus.types.speech import (
    OcrRequest,
    OcrResult,
    SpeakRequest,
    Speech,
    SpeechChunk,
    TranscribeRequest,
    Transcription,
    TranslateRequest,
    Translation,
)

if TYPE_CHECKING:
    from terminus.client.speech_stream import TranscriptionSession
    from terminus.transports import Transport

DEFAULT_MODELS = {
    "stt": ("TERMINUS_STT_MODEL", "whisper-base"),
    "tts": ("TERMINUS_TTS_MODEL", "en_us-joe-medium"),
    "ocr": ("TERMINUS_OCR_MODEL", "pp-ocrv6-small"),
    "translate": ("TERMINUS_TRANSLATE_MODEL", "qwen2.5-coder-0.5b-instruct"),
}


def default_model(kind: str, model: str | None) -> str:
    if model:
        return model
    env, fallback = DEFAULT_MODELS[kind]
    return os.environ.get(env) or fallback


def _validated(cls: Any, **fields: Any) -> Any:
    try:
        return cls(**fields)
    except ValidationError as exc:
        raise InvalidParameterError(f"invalid request: {validation_message(exc)}") from exc


class SpeechMixin:
    transport: Transport

    # -- speech to text ------------------------------------------------------------

    @model_keyword(1)
    def transcribe(
        self,
        audio: AudioLike,
        *,
        model: str | None = None,
        sample_rate: int | None = None,
        language: str | None = None,
        task: Literal["transcribe", "translate"] = "transcribe",
        word_timestamps: bool = False,
        initial_prompt: str | None = None,
        hotwords: str | None = None,
        beam_size: int | None = None,
        vad_filter: bool = False,
        progress: TranscribeProgress | None = None,
    ) -> Transcription:
        """Text, timed segments and the detected language of ``audio``.

        ``audio`` is a file path or encoded bytes (wav, mp3, flac, ogg…), or a numpy
        array of samples (float in [-1, 1] or int16) at ``sample_rate`` (default 16 kHz).
        ``task="translate"`` turns speech in any language into English text.
        ``progress(done_s, total_s)`` is called as segments are decoded.
        """
        data, audio_format, rate = audio_payload(audio, sample_rate)
        request = _validated(
            TranscribeRequest,
            model=default_model("stt", model),
            audio=data,
            audio_format=audio_format,
            sample_rate=rate,
            language=normalize_code(language) if language else None,
            task=task,
            word_timestamps=word_timestamps,
            initial_prompt=initial_prompt,
            hotwords=hotwords,
            beam_size=beam_size,
            vad_filter=vad_filter,
        )
        result: Transcription = self.transport.transcribe(request, progress)
        return result

    def transcription_session(
        self, model: str | None = None, *, sample_rate: int = 16_000, **options: Any
    ) -> TranscriptionSession:
        """A streaming session: ``write`` PCM chunks as they arrive, read partial and final text.

        ``options`` are :class:`TranscriptionSession`'s (language, end_silence_s, …).
        """
        from terminus.client.speech_stream import TranscriptionSession

        return TranscriptionSession(self, default_model("stt", model), sample_rate, **options)

    # -- text to speech ------------------------------------------------------------

    @model_keyword(1)
    def speak_stream(
        self,
        text: str,
        *,
        model: str | None = None,
        speed: float = 1.0,
        speaker: int | None = None,
    ) -> Iterator[SpeechChunk]:
        """Speech a sentence at a time (int16 mono PCM chunks), so playback can start early."""
        request = _validated(
            SpeakRequest, model=default_model("tts", model), text=text, speed=speed, speaker=speaker
        )
        cancel = CancelToken()
        chunks = self.transport.speak(request, cancel)
        try:
            yield from chunks
        finally:
            cancel.cancel()
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    @model_keyword(1)
    def speak(
        self,
        text: str,
        *,
        model: str | None = None,
        speed: float = 1.0,
        speaker: int | None = None,
        output: str | os.PathLike[str] | None = None,
    ) -> Speech:
        """The whole utterance; with ``output`` it is also written there as a WAV file."""
        started = time.perf_counter()
        parts: list[bytes] = []
        sample_rate = 0
        for chunk in self.speak_stream(text, model=model, speed=speed, speaker=speaker):
            parts.append(chunk.pcm)
            sample_rate = chunk.sample_rate
        if not parts:
            raise InvalidParameterError("the text has nothing to speak")
        speech = Speech(
            model=default_model("tts", model),
            pcm=b"".join(parts),
            sample_rate=sample_rate,
            chunks=len(parts),
            total_s=time.perf_counter() - started,
        )
        if output is not None:
            write_atomically(Path(output), speech.wav_bytes())
        return speech

    # -- OCR -------------------------------------------------------------------------

    @model_keyword(1)
    def ocr(
        self, image: ImageLike, *, model: str | None = None, min_confidence: float | None = None
    ) -> OcrResult:
        """Text blocks (text, box, confidence) in reading order; ``.text`` joins them."""
        request = _validated(
            OcrRequest,
            model=default_model("ocr", model),
            image=image_payload(image),
            min_confidence=min_confidence,
        )
        result: OcrResult = self.transport.ocr(request)
        return result

    # -- translation -----------------------------------------------------------------

    def translation_request(
        self,
        text: str,
        target: str,
        source: str | None = None,
        *,
        model: str | None = None,
        max_tokens: int | None = None,
    ) -> TranslateRequest:
        """A validated request, its source language detected when not given."""
        from terminus.runtime.speech import with_source

        request: TranslateRequest = _validated(
            TranslateRequest,
            model=default_model("translate", model),
            text=text,
            source=normalize_code(source) if source else None,
            target=normalize_code(target),
            max_tokens=max_tokens,
        )
        return with_source(request)

    def translate_stream(
        self, text: str, target: str, source: str | None = None, **kwargs: Any
    ) -> CompletionStream:
        """The translation as a completion stream (content deltas, then ``Done``)."""
        request = self.translation_request(text, target, source, **kwargs)
        return CompletionStream(lambda cancel: self.transport.translate(request, cancel))

    def translate(
        self,
        text: str,
        target: str,
        source: str | None = None,
        *,
        model: str | None = None,
        max_tokens: int | None = None,
    ) -> Translation:
        """Translate ``text`` into ``target`` (ISO 639-1); the source is detected if not given.

        ``model`` is a translation model (CTranslate2 NMT) or a chat model, which is
        prompted (default: Qwen2.5-Coder-0.5B-Instruct, env TERMINUS_TRANSLATE_MODEL).
        """
        started = time.perf_counter()
        request = self.translation_request(text, target, source, model=model, max_tokens=max_tokens)
        stream = CompletionStream(lambda cancel: self.transport.translate(request, cancel))
        return Translation(
            model=request.model,
            text=stream.text.strip(),
            source=request.source or "",
            target=request.target,
            source_detected=source is None,
            total_s=time.perf_counter() - started,
        )


def write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, then rename: never a half-written file."""
    path = path.expanduser()
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


class AsyncSpeechMixin:
    """The asyncio face of :class:`SpeechMixin`: the same calls, run in threads."""

    sync: Any  # the Terminus this client wraps

    @model_keyword(1)
    async def transcribe(self, audio: AudioLike, **kwargs: Any) -> Transcription:
        result: Transcription = await asyncio.to_thread(self.sync.transcribe, audio, **kwargs)
        return result

    @model_keyword(1)
    async def speak(self, text: str, **kwargs: Any) -> Speech:
        result: Speech = await asyncio.to_thread(self.sync.speak, text, **kwargs)
        return result

    @model_keyword(1)
    async def ocr(self, image: ImageLike, **kwargs: Any) -> OcrResult:
        result: OcrResult = await asyncio.to_thread(self.sync.ocr, image, **kwargs)
        return result

    def translate_stream(
        self, text: str, target: str, source: str | None = None, **kwargs: Any
    ) -> AsyncCompletionStream:
        """Like :meth:`SpeechMixin.translate_stream`; iterate with ``async for``.

        The source language is detected (if not given) when the stream starts.
        """
        sync = self.sync

        def events(cancel: CancelToken) -> Iterator[ChatEvent]:
            request = sync.translation_request(text, target, source, **kwargs)
            return iter(sync.transport.translate(request, cancel))

        return AsyncCompletionStream(events)

    async def translate(
        self, text: str, target: str, source: str | None = None, **kwargs: Any
    ) -> Translation:
        result: Translation = await asyncio.to_thread(
            self.sync.translate, text, target, source, **kwargs
        )
        return result
