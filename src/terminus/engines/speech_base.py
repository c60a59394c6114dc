"""What loaded speech, OCR and translation models offer (the chat protocols live in base.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol, runtime_checkable

from terminus.engines.base import Availability, LoadedModel
from terminus.errors import CapabilityError, EngineUnavailableError
from terminus.models.card import ModelCard
from terminus.types import CancelToken, ChatEvent
from terminus.types.common import Capability, model_kind
from terminus.types.speech import (
    OcrRequest,
    OcrResult,
    SpeakRequest,
    SpeechChunk,
    TranscribeRequest,
    Transcription,
    TranslateRequest,
)


def probe_modules(
    modules: tuple[str, ...], distribution: str, detail: str, extra: str
) -> Availability:
    """Availability of an engine needing ``modules``; never imports them."""
    import importlib.metadata as md
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        return Availability(False, f"missing {', '.join(missing)}; pip install 'terminus[{extra}]'")
    try:
        version: str | None = md.version(distribution)
    except md.PackageNotFoundError:
        version = None
    return Availability(True, detail, version)


def check_loadable(
    engine: str, availability: Availability, card: ModelCard, capability: Capability
) -> None:
    """Refuse before any work: a card of another capability, or an engine that cannot run."""
    if card.capability != capability:
        raise CapabilityError(
            f"{card.id} is {model_kind(card.capability)}; the {engine} engine runs {capability} models"
        )
    if not availability.ok:
        raise EngineUnavailableError(f"{engine} cannot run: {availability.detail}")


#: Called as segments are decoded: (seconds of audio done, seconds in all).
TranscribeProgress = Callable[[float, float], None]


@runtime_checkable
class SpeechToTextModel(LoadedModel, Protocol):
    def transcribe(
        self, request: TranscribeRequest, progress: TranscribeProgress | None = None
    ) -> Transcription:
        """Decode ``request.audio`` and transcribe (or translate to English) all of it."""
        ...


@runtime_checkable
class TextToSpeechModel(LoadedModel, Protocol):
    sample_rate: int

    def speak(self, request: SpeakRequest, cancel: CancelToken) -> Iterator[SpeechChunk]:
        """Speech one sentence at a time, so playback can start before the end."""
        ...


@runtime_checkable
class OcrModel(LoadedModel, Protocol):
    def ocr(self, request: OcrRequest) -> OcrResult:
        """Text blocks of the image, in reading order."""
        ...


@runtime_checkable
class TranslationModel(LoadedModel, Protocol):
    def languages(self) -> tuple[tuple[str, str], ...]:
        """The (source, target) pairs the model translates."""
        ...

    def translate(self, request: TranslateRequest, cancel: CancelToken) -> Iterator[ChatEvent]:
        """The translation as content deltas (a sentence at a time), then ``Done``."""
        ...
