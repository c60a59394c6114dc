"""Split long text into sentence-sized pieces, so TTS and NMT never see more than they can take.

Sentences end at ``. ! ? …`` (and CJK full stops) followed by space; a sentence longer
than ``max_chars`` is cut at the last clause mark (``, ; :``) that fits, else at the
last space, else hard.
"""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?…。！？])\s+|\n\s*\n")
_CLAUSE_MARKS = ",;:，；："
DEFAULT_MAX_CHARS = 400


def split_sentences(text: str, max_chars: int = DEFAULT_MAX_CHARS) -> list[str]:
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        sentence = " ".join(sentence.split())
        if sentence:
            pieces.extend(_cut(sentence, max_chars))
    return pieces


def _cut(sentence: str, max_chars: int) -> list[str]:
    out: list[str] = []
    while len(sentence) > max_chars:
        window = sentence[: max_chars + 1]
        cut = max(window.rfind(mark) for mark in _CLAUSE_MARKS)
        if cut <= 0:
            cut = window.rfind(" ")
        if cut <= 0:
            cut = max_chars
        else:
            cut += 1  # keep the mark (or drop the space) with the left part
        out.append(sentence[:cut].strip())
        sentence = sentence[cut:].strip()
    if sentence:
        out.append(sentence)
    return out
