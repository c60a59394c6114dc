"""Speech to text with Whisper on CTranslate2 (faster-whisper).

The card's files form a CTranslate2 model folder (model.bin, config.json,
tokenizer.json, vocabulary.txt) that faster-whisper loads directly. Audio is decoded
here (PyAV), so every transport sends the same encoded bytes.
"""

from __future__ import annotations

import threading
import time
from typing import Any, ClassVar

from terminus.engines.audio import SAMPLE_RATE, decode_request_audio, is_silent
from terminus.engines.base import Availability, LoadOptions
from terminus.engines.llamacpp import default_threads
from terminus.engines.speech_base import TranscribeProgress, check_loadable, probe_modules
from terminus.errors import (
    EngineError,
    InvalidParameterError,
    UnsupportedLanguageError,
)
from terminus.models.cache import ModelFiles
from terminus.models.card import ModelCard
from terminus.types.common import Capability
from terminus.types.speech import Segment, TranscribeRequest, Transcription, Word

#: Working memory beyond the weights: encoder activations for a 30 s window, beams.
_WORKING_BYTES = 200 * 1024 * 1024


class FasterWhisperEngine:
    name: ClassVar[str] = "faster-whisper"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.STT})

    @classmethod
    def probe(cls) -> Availability:
        return probe_modules(
            ("faster_whisper", "av"),
            "faster-whisper",
            "Whisper on CTranslate2 (faster-whisper)",
            "speech",
        )

    def estimate_memory(self, card: ModelCard, files: ModelFiles, options: LoadOptions) -> int:
        return files.paths["model.bin"].stat().st_size + _WORKING_BYTES

    def load(self, card: ModelCard, files: ModelFiles, options: LoadOptions) -> WhisperSTTModel:
        check_loadable(self.name, self.probe(), card, Capability.STT)
        from faster_whisper import WhisperModel

        compute_type = str(
            options.extra.get("compute_type", card.defaults.get("compute_type", "int8"))
        )
        try:
            model = WhisperModel(
                str(files.paths["model.bin"].parent),
                device="cpu",
                compute_type=compute_type,
                cpu_threads=options.threads or default_threads(),
                local_files_only=True,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise EngineError(f"could not load {card.id}: {exc}") from exc
        return WhisperSTTModel(card, model, self.estimate_memory(card, files, options))


class WhisperSTTModel:
    def __init__(self, card: ModelCard, model: Any, memory_bytes: int) -> None:
        self.card = card
        self.model = model
        self.memory_bytes = memory_bytes
        self.multilingual = bool(card.defaults.get("multilingual", model.model.is_multilingual))
        # One CTranslate2 replica: concurrent transcriptions queue rather than thrash.
        self._lock = threading.Lock()

    def close(self) -> None:
        self.model = None

    def transcribe(
        self, request: TranscribeRequest, progress: TranscribeProgress | None = None
    ) -> Transcription:
        started = time.perf_counter()
        language = self._check_language(request)
        samples = decode_request_audio(request)
        duration = samples.size / SAMPLE_RATE
        if is_silent(samples):
            return Transcription(
                model=self.card.id,
                text="",
                segments=(),
                language=language or "",
                language_probability=0.0,
                duration_s=duration,
                total_s=time.perf_counter() - started,
            )
        options: dict[str, Any] = {
            "language": language,
            "task": request.task,
            "beam_size": request.beam_size or int(self.card.defaults.get("beam_size", 5)),
            "word_timestamps": request.word_timestamps,
            "initial_prompt": request.initial_prompt,
            "hotwords": request.hotwords,
            "vad_filter": request.vad_filter,
        }
        with self._lock:
            if self.model is None:
                raise EngineError(f"{self.card.id} was unloaded")
            try:
                raw_segments, info = self.model.transcribe(samples, **options)
                segments_list: list[Segment] = []
                for raw in raw_segments:  # decoding happens while iterating
                    segments_list.append(_segment(raw))
                    if progress is not None:
                        progress(min(raw.end, duration), duration)
                segments = tuple(segments_list)
            except (RuntimeError, ValueError) as exc:
                raise EngineError(f"{self.card.id} failed to transcribe: {exc}") from exc
        return Transcription(
            model=self.card.id,
            text=" ".join(s.text.strip() for s in segments if s.text.strip()),
            segments=segments,
            language=info.language,
            language_probability=float(info.language_probability),
            duration_s=duration,
            total_s=time.perf_counter() - started,
        )

    def _check_language(self, request: TranscribeRequest) -> str | None:
        language = request.language.lower() if request.language else None
        if self.multilingual:
            from faster_whisper.tokenizer import _LANGUAGE_CODES

            if language is not None and language not in _LANGUAGE_CODES:
                raise UnsupportedLanguageError(f"Whisper does not know the language {language!r}")
            return language
        if request.task == "translate":
            raise InvalidParameterError(
                f"{self.card.id} is English-only and cannot translate speech",
                hint="use a multilingual model such as whisper-base",
            )
        if language not in (None, "en"):
            raise UnsupportedLanguageError(
                f"{self.card.id} transcribes English only, not {language!r}",
                hint="use a multilingual model such as whisper-base",
            )
        return "en"


def _segment(raw: Any) -> Segment:
    words = tuple(
        Word(start=w.start, end=w.end, word=w.word, probability=w.probability)
        for w in (raw.words or ())
    )
    return Segment(start=raw.start, end=raw.end, text=raw.text, words=words)
