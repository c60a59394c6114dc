"""Citations found after the fact: each sentence of an answer is matched to the source it
restates.

Small chat models answer a question from numbered sources well but cite them badly
(Qwen2.5-Coder-0.5B answered "[1]" alone, or dropped the number once asked for a full
sentence). So the answer is written without the burden of citing, and each of its
sentences is attributed to the numbered source that holds its new words — the words of the
answer that are not in the question (a number, a name, a unit) — weighted by how few
sources contain them, with the embedding similarity of sentence and source to break ties.
A sentence whose new words appear in no source is not attributed, nor one that states a
figure (a token with a digit: 8080, 6.3, q4_k_m) that a source lacks: an answer that says
it does not know, or states something the sources do not, cites nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from terminus.rag.focus import Embed, content_words

_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_UNKNOWN = re.compile(
    r"\b(do(es)? not|don'?t|cannot|can'?t|unable to) (know|find|say|answer|tell|determine)"
    r"|\b(not|no) (mentioned|stated|specified|given|provided)\b"
    r"|\bsources? (do(es)? not|don'?t) (contain|mention|say|state)",
    re.IGNORECASE,
)
TIE_WEIGHT = 0.25  # how much embedding similarity counts next to one matched word


def sentences(text: str) -> list[str]:
    return [s for s in (p.strip() for p in _SENTENCE.split(text.strip())) if s]


def says_unknown(text: str) -> bool:
    return bool(_UNKNOWN.search(text))


def attribute(
    answer: str, question: str, shown: Sequence[str], embed: Embed | None = None
) -> list[list[int]]:
    """For each sentence of ``answer``, the indexes into ``shown`` (the source texts the
    model read) it is attributed to: one, or none."""
    parts = sentences(answer)
    if not parts or not shown:
        return [[] for _ in parts]
    asked = content_words(question)
    vocab = [content_words(text) for text in shown]
    similarity = None
    if embed is not None:
        vectors = np.asarray(embed([*parts, *shown]), dtype=np.float32)
        similarity = vectors[: len(parts)] @ vectors[len(parts) :].T
    found: list[list[int]] = []
    for row, sentence in enumerate(parts):
        new = content_words(sentence) - asked
        if says_unknown(sentence) or not new:
            found.append([])
            continue
        numbers = {w for w in new if any(c.isdigit() for c in w)}
        scores = []
        for index, words in enumerate(vocab):
            matched = new & words
            lexical = sum(1.0 / sum(w in v for v in vocab) for w in matched)
            if numbers and not numbers & words:
                lexical = 0.0  # a figure the answer states must be in what it cites
            tie = float(similarity[row, index]) if similarity is not None else 0.0
            scores.append((lexical, lexical + TIE_WEIGHT * tie))
        best = max(range(len(shown)), key=lambda i: scores[i][1])
        found.append([best] if scores[best][0] > 0 else [])
    return found
