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
