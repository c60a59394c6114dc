"""Language codes, names for prompts, and source-language detection (py3langid)."""

from __future__ import annotations

import threading
from typing import Any

from terminus.errors import EngineUnavailableError, UnsupportedLanguageError

#: ISO 639-1 codes the LLM translation prompt can name (the model decides how well it does).
LANGUAGE_NAMES = {
    "ar": "Arabic", "bg": "Bulgarian", "ca": "Catalan", "cs": "Czech", "da": "Danish",
    "de": "German", "el": "Greek", "en": "English", "es": "Spanish", "et": "Estonian",
    "fa": "Persian", "fi": "Finnish", "fr": "French", "he": "Hebrew", "hi": "Hindi",
    "hr": "Croatian", "hu": "Hungarian", "id": "Indonesian", "it": "Italian", "ja": "Japanese",
    "ko": "Korean", "lt": "Lithuanian", "lv": "Latvian", "nl": "Dutch", "no": "Norwegian",
    "pl": "Polish", "pt": "Portuguese", "ro": "Romanian", "ru": "Russian", "sk": "Slovak",
    "sl": "Slovenian", "sv": "Swedish", "th": "Thai", "tr": "Turkish", "uk": "Ukrainian",
    "vi": "Vietnamese", "zh": "Chinese",
}  # fmt: skip

_identifier: Any = None
_identifier_lock = threading.Lock()


def normalize_code(code: str) -> str:
    """``"FR"``, ``"fr-FR"`` and ``"fr_FR"`` are all ``"fr"``."""
    return code.strip().replace("_", "-").split("-")[0].lower()


def language_name(code: str) -> str:
    name = LANGUAGE_NAMES.get(normalize_code(code))
    if name is None:
        raise UnsupportedLanguageError(
            f"unknown language code {code!r}",
            hint=f"use an ISO 639-1 code: {', '.join(sorted(LANGUAGE_NAMES))}",
        )
    return name


def detect_language(text: str) -> tuple[str, float]:
    """The most likely ISO 639-1 code of ``text`` and its probability."""
    global _identifier
    try:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier
    except ImportError as exc:
        raise EngineUnavailableError(
            "detecting the source language needs py3langid",
            hint="pip install 'terminus-sdk[translate]' or pass the source language",
        ) from exc
    with _identifier_lock:
        if _identifier is None:
            identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
            # Only languages a prompt can name: short texts otherwise come back as
            # rare languages ("hello world" is Fulah to the full model).
            identifier.set_languages(sorted(LANGUAGE_NAMES))
            _identifier = identifier
        code, probability = _identifier.classify(text)
    return str(code), float(probability)
