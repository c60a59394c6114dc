"""Speech, OCR and translation requests run through a ModelManager.

Each function checks the model's capability, pins the model for the duration
(``manager.use``) and calls the loaded model. Translation goes to an NMT model when
the card is a translation model, or is prompted through the chat path when it is a
chat model.
"""

from __future__ import annotations

from collections.abc import Iterator

from terminus.engines.speech_base import (
    OcrModel,
    SpeechToTextModel,
    TextToSpeechModel,
    TranscribeProgress,
    TranslationModel,
)
from terminus.errors import CapabilityError, UnsupportedLanguageError
from terminus.runtime.language import detect_language, language_name, normalize_code
from terminus.runtime.manager import ModelManager
from terminus.types import CancelToken, ChatEvent, ChatRequest, GenerationParams, Message
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

TRANSLATION_SYSTEM_PROMPT = (
    "You are a professional translator. Translate the user's text from {source} to "
    "{target}. Keep the meaning, tone and formatting. Reply with the translation only, "
    "without notes or quotes."
)


def _require(manager: ModelManager, name: str, capability: Capability, what: str) -> None:
    card = manager.catalog.get(name)
    if card.capability != capability:
        raise CapabilityError(f"{card.id} is {model_kind(card.capability)}; it cannot {what}")


def transcribe(
    manager: ModelManager,
    request: TranscribeRequest,
    progress: TranscribeProgress | None = None,
) -> Transcription:
    _require(manager, request.model, Capability.STT, "transcribe speech")
    with manager.use(request.model) as model:
        if not isinstance(model, SpeechToTextModel):
            raise CapabilityError(f"the {model.card.engine} engine cannot transcribe")
        return model.transcribe(request, progress)


def speak(
    manager: ModelManager, request: SpeakRequest, cancel: CancelToken
) -> Iterator[SpeechChunk]:
    _require(manager, request.model, Capability.TTS, "speak")
    with manager.use(request.model) as model:
        if not isinstance(model, TextToSpeechModel):
            raise CapabilityError(f"the {model.card.engine} engine cannot speak")
        yield from model.speak(request, cancel)


def ocr(manager: ModelManager, request: OcrRequest) -> OcrResult:
    _require(manager, request.model, Capability.OCR, "read images")
    with manager.use(request.model) as model:
        if not isinstance(model, OcrModel):
            raise CapabilityError(f"the {model.card.engine} engine cannot read images")
        return model.ocr(request)


def with_source(request: TranslateRequest) -> TranslateRequest:
    """The request with its source language filled in (detected when not given)."""
    if request.source:
        return request
    source, _ = detect_language(request.text)
    return request.model_copy(update={"source": source})


def translate(
    manager: ModelManager, request: TranslateRequest, cancel: CancelToken
) -> Iterator[ChatEvent]:
    card = manager.catalog.get(request.model)
    request = with_source(request)
    source, target = normalize_code(request.source or ""), normalize_code(request.target)
    if card.capability == Capability.CHAT:
        yield from manager.chat(_translation_chat(request, source, target), cancel)
        return
    if card.capability != Capability.TRANSLATE:
        raise CapabilityError(f"{card.id} is {model_kind(card.capability)}; it cannot translate")
    with manager.use(request.model) as model:
        if not isinstance(model, TranslationModel):
            raise CapabilityError(f"the {card.engine} engine cannot translate")
        pairs = model.languages()
        if (source, target) not in pairs:
            offered = ", ".join(f"{s}→{t}" for s, t in pairs)
            raise UnsupportedLanguageError(
                f"{card.id} does not translate {source}→{target}", hint=f"it offers {offered}"
            )
        yield from model.translate(
            request.model_copy(update={"source": source, "target": target}), cancel
        )


def _translation_chat(request: TranslateRequest, source: str, target: str) -> ChatRequest:
    if source == target:
        raise UnsupportedLanguageError(f"source and target are both {language_name(source)}")
    system = TRANSLATION_SYSTEM_PROMPT.format(
        source=language_name(source), target=language_name(target)
    )
    return ChatRequest(
        model=request.model,
        messages=(
            Message(role="system", content=system),
            Message(role="user", content=request.text),
        ),
        params=GenerationParams(temperature=0.0, max_tokens=request.max_tokens or 1024),
    )
