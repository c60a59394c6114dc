"""Focus the context of a cited answer: the retrieved chunks' sentences that bear on the
question, not whole chunks.

A 0.5B chat model reads a 400-word context slowly and loses the fact in it; given the few
sentences that match the question (by meaning and by shared words), it answers faster and
more often right (docs/rag.md, "Cited answers"). Sentences keep their chunk's number and
their order within it, so every ``[n]`` still names one retrieved chunk.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from terminus.rag.keywords import STOPWORDS
from terminus.rag.types import SearchResult

Embed = Callable[[list[str]], Any]  # texts -> (n, d) array of unit vectors

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9`(\"'*])")
_WORD = re.compile(r"[a-z0-9][a-z0-9_./-]*[a-z0-9]|[a-z0-9]", re.IGNORECASE)
_MARKUP_ONLY = re.compile(r"^[\s|:\-=`#*>]*$")
_STANDS_ALONE = re.compile(r"^(\||[-*+] |\d+[.)] |#|>)")
MAX_SEGMENT_WORDS = 60


def words(text: str) -> list[str]:
    """Lower-cased word tokens; dotted numbers and names stay whole (6.3, 127.0.0.1, medbench-v2)."""
    return [w.lower() for w in _WORD.findall(text)]


def content_words(text: str) -> set[str]:
    return {w for w in words(text) if w not in STOPWORDS and len(w) > 1}


@dataclass(frozen=True)
class Segment:
    source: int  # index into the retrieved results
    order: int  # position within that chunk
    text: str


def _units(text: str) -> Iterator[str]:
    """Paragraphs with hard-wrapped lines joined again; a table row, list item, heading
    or line of code stands alone."""
    current: list[str] = []
    in_code = False
    for raw in text.splitlines():
        line = raw.strip()
        fence = line.startswith("```")
        if fence:
            in_code = not in_code
        if not line or fence or _MARKUP_ONLY.match(line):
            if current:
                yield " ".join(current)
            current = []
        elif in_code or _STANDS_ALONE.match(line):
            if current:
                yield " ".join(current)
            current = [line]
        else:
            current.append(line)
    if current:
        yield " ".join(current)


def segments(results: Sequence[SearchResult]) -> list[Segment]:
    """Each chunk cut into sentences (and lines that stand alone: table rows, items)."""
    found: list[Segment] = []
    for index, result in enumerate(results):
        order = 0
        for unit in _units(result.text):
            for sentence in _SENTENCE_END.split(unit):
                tokens = sentence.split()
                for start in range(0, len(tokens), MAX_SEGMENT_WORDS):
                    piece = " ".join(tokens[start : start + MAX_SEGMENT_WORDS])
                    if content_words(piece):
                        found.append(Segment(index, order, piece))
                        order += 1
    return found


def select(
    question: str,
    results: Sequence[SearchResult],
    embed: Embed,
    budget_words: int,
    max_sources: int = 3,
) -> list[tuple[SearchResult, list[str]]]:
    """The sentences of ``results`` most related to ``question``, up to ``budget_words``,
    grouped by chunk (best chunk first) and in each chunk's own order.

    A sentence scores its cosine similarity to the question plus the share of the
    question's content words it contains; a sentence from a lower-ranked chunk scores a
    little less, so near-ties go to the chunk retrieval preferred.
    """
    pieces = segments(results)
    if not pieces:
        return []
    vectors = np.asarray(embed([question, *(p.text for p in pieces)]), dtype=np.float32)
    similarity = vectors[1:] @ vectors[0]
    asked = content_words(question)
    scores = []
    for piece, cosine in zip(pieces, similarity, strict=True):
        shared = len(asked & content_words(piece.text)) / len(asked) if asked else 0.0
        scores.append(float(cosine) + 0.5 * shared - 0.02 * piece.source)
    chosen: list[Segment] = []
    best: dict[int, float] = {}  # chunk -> score of its best chosen sentence
    used = 0
    for i in np.argsort(-np.asarray(scores), kind="stable"):
        piece = pieces[int(i)]
        size = len(piece.text.split())
        if chosen and used + size > budget_words:
            continue
        if piece.source not in best and len(best) >= max_sources:
            continue
        chosen.append(piece)
        best.setdefault(piece.source, scores[int(i)])
        used += size
    return [
        (results[s], [p.text for p in sorted(chosen, key=lambda p: p.order) if p.source == s])
        for s in sorted(best, key=lambda s: -best[s])
    ]
