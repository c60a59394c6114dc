from __future__ import annotations

from enum import StrEnum


class Capability(StrEnum):
    """What a model (and an engine) can do."""

    CHAT = "chat"
    COMPLETION = "completion"  # base models: raw text continuation, no chat template
    EMBED = "embed"
    STT = "stt"
    TTS = "tts"
    OCR = "ocr"
    TRANSLATE = "translate"
    IMAGE = "image"
    TRAIN = "train"
    VISION = "vision"  # a chat model that reads images (it has a projector); never a card's own


_KINDS = {
    "chat": "a chat model",
    "completion": "a base model (text continuation only)",
    "embed": "an embedding model",
    "stt": "a speech-to-text model",
    "tts": "a text-to-speech model",
    "ocr": "an OCR model",
    "translate": "a translation model",
    "image": "an image model",
    "train": "a training model",
    "vision": "a vision model",
}


def model_kind(capability: str) -> str:
    """What a model of this capability is, with its article: ``an embedding model``."""
    return _KINDS.get(str(capability), f"a {capability} model")
