"""Answers grounded in retrieved chunks, streamed like a completion, with citations.

The retrieved chunks go into the prompt numbered ``[1]``, ``[2]`` …; the model is asked
to cite them by number. :class:`Answer` streams the completion's events unchanged and
knows which numbered source each ``[n]`` in the text refers to.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from terminus.rag.types import Citation, SearchResult
from terminus.types.text_compat import CallableText

if TYPE_CHECKING:
    from terminus.client.streams import CompletionStream
    from terminus.types import ChatEvent, Completion

# No example answer anywhere: with an example sentence closing the user turn ("Cats purr
# [1]."), Qwen2.5-Coder-0.5B copied it or answered "[1]" alone. The instruction to cite
# rides on the question itself, where this model follows it (docs/rag.md, "Cited answers").
SYSTEM_PROMPT = (
    "Answer the user's question using only the numbered sources. Write one or two sentences. "
    "End each sentence with the number of the source it comes from, in square brackets. "
    "If the sources do not contain the answer, say you do not know."
)
QUESTION_PREFIX = "Question (answer it, citing the source number in square brackets): "
# A 0.5B model loses the thread in long contexts: about three default chunks.
DEFAULT_CONTEXT_WORDS = 400
_CITATION = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")


def build_messages(
    question: str, results: Sequence[SearchResult], context_words: int = DEFAULT_CONTEXT_WORDS
) -> tuple[list[dict[str, str]], list[Citation]]:
    """The chat messages for ``question`` and the sources they number, best first.

    Sources are added until ``context_words`` would be exceeded (the first one is always
    kept, cut to fit), so the prompt fits a small model's context.
    """
    sources: list[Citation] = []
    blocks: list[str] = []
    budget = context_words
    for result in results:
        words = result.text.split()
        if len(words) > budget:
            if sources:
                break
            words = words[:budget]
        budget -= len(words)
        number = len(sources) + 1
        sources.append(Citation(number=number, result=result))
        blocks.append(f"[{number}] {' '.join(words)}")
    context = "\n".join(blocks) if blocks else "(no sources found)"
    user = f"Sources:\n{context}\n\n{QUESTION_PREFIX}{question}"
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": user},
    ], sources


def cited_numbers(text: str) -> list[int]:
    """Every ``[n]`` / ``[n, m]`` number in ``text``, in order of first appearance."""
    seen: dict[int, None] = {}
    for group in _CITATION.findall(text):
        for part in re.split(r"[,;]", group):
            seen.setdefault(int(part), None)
    return list(seen)


class Answer:
    """A streamed answer. Iterate it for the completion's events (as from ``completion``);
    ``sources`` are the numbered chunks the model was given, ``citations`` those its text
    cites (valid numbers only, in order of first citation)."""

    def __init__(self, stream: CompletionStream, question: str, sources: list[Citation]) -> None:
        self._stream = stream
        self.question = question
        self.sources: tuple[Citation, ...] = tuple(sources)
        self._text: list[str] = []

    def __iter__(self) -> Iterator[ChatEvent]:
        for event in self._stream:
            if event.type == "content":
                self._text.append(event.text)
            yield event

    def result(self) -> Completion:
        """Drain the stream (if not yet consumed) and fold its events."""
        completion = self._stream.result()
        if not self._text:
            self._text.append(completion.text)
        return completion

    @property
    def text(self) -> CallableText:
        """The answer's text (drains the stream if not yet consumed)."""
        return CallableText.of(self.result().text, "Answer")

    def cancel(self) -> None:
        self._stream.cancel()

    @property
    def citations(self) -> list[Citation]:
        by_number = {c.number: c for c in self.sources}
        text = "".join(self._text)
        return [by_number[n] for n in cited_numbers(text) if n in by_number]

    def __enter__(self) -> Answer:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stream.__exit__(*exc)
