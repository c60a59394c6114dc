"""Answers grounded in retrieved chunks, streamed like a completion, with citations.

With an embedding model at hand (``Workspace.ask``), the prompt holds the retrieved chunks'
sentences that bear on the question (:mod:`terminus.rag.focus`), the model is asked for a
one-sentence answer, and each sentence of the answer is attributed to the source it
restates (:mod:`terminus.rag.attribution`). Without one, whole chunks go in numbered
``[1]``, ``[2]`` … and the ``[n]`` the model writes are its citations. :class:`Answer`
streams the completion's events unchanged either way.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from terminus.rag.attribution import attribute, sentences
from terminus.rag.focus import Embed, select
from terminus.rag.types import Citation, SearchResult
from terminus.types.text_compat import CallableText

if TYPE_CHECKING:
    from terminus.client.streams import CompletionStream
    from terminus.types import ChatEvent, Completion

# No example answer and no request to cite: with an example sentence ("Cats purr [1].")
# Qwen2.5-Coder-0.5B copied it, and asked to cite it answered "[1]" alone; asked for one
# sentence it states the fact, and attribution supplies the source (docs/rag.md).
SYSTEM_PROMPT = (
    "Answer the user's question using only the sources. Answer in one short "
    "sentence that states the answer. If the sources do not contain the answer, say you "
    "do not know."
)
QUESTION_PREFIX = "Question: "
# A 0.5B model loses the thread in long contexts: about three default chunks, or the
# focused sentences of up to three chunks.
DEFAULT_CONTEXT_WORDS = 400
FOCUSED_CONTEXT_WORDS = 120
_CITATION = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")


@dataclass
class Prompt:
    """The chat messages, the numbered sources, and the text of each the model was shown."""

    messages: list[dict[str, str]]
    sources: list[Citation]
    shown: list[str] = field(default_factory=list)


def _messages(question: str, blocks: list[str], sep: str = "\n") -> list[dict[str, str]]:
    context = sep.join(blocks) if blocks else "(no sources found)"
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"Sources:\n{context}\n\n{QUESTION_PREFIX}{question}"},
    ]


def build_prompt(
    question: str,
    results: Sequence[SearchResult],
    context_words: int = DEFAULT_CONTEXT_WORDS,
    embed: Embed | None = None,
    focus_words: int = FOCUSED_CONTEXT_WORDS,
) -> Prompt:
    """The prompt for ``question``: with ``embed``, the sentences of ``results`` closest
    to the question (``focus_words`` in all); without, whole chunks up to
    ``context_words``. The sources are not numbered in it (see :class:`Answer`)."""
    if embed is None:
        _, sources = build_messages(question, results, context_words)
        # as numbered there: whole chunks, only a lone first one cut to the budget
        picked = [(c.result, [" ".join(c.result.text.split()[:context_words])]) for c in sources]
    else:
        picked = select(question, results, embed, focus_words)
    sources = [Citation(number=n, result=r) for n, (r, _) in enumerate(picked, start=1)]
    shown = ["\n".join(f"- {part}" for part in parts) for _, parts in picked]
    # One sentence a line, unnumbered: shown "[1] …", the 0.5B model still answered "[1]"
    # alone now and then; the answer's sources are found by attribution instead.
    return Prompt(_messages(question, shown, "\n\n"), sources, shown)


def build_messages(
    question: str, results: Sequence[SearchResult], context_words: int = DEFAULT_CONTEXT_WORDS
) -> tuple[list[dict[str, str]], list[Citation]]:
    """The chat messages for ``question`` with whole chunks, and the sources they number.

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
    return _messages(question, blocks), sources


def cited_numbers(text: str) -> list[int]:
    """Every ``[n]`` / ``[n, m]`` number in ``text``, in order of first appearance."""
    seen: dict[int, None] = {}
    for group in _CITATION.findall(text):
        for part in re.split(r"[,;]", group):
            seen.setdefault(int(part), None)
    return list(seen)


class Answer:
    """A streamed answer. Iterate it for the completion's events (as from ``completion``);
    ``sources`` are the chunks the model was given, numbered, and ``citations`` those the
    text cites: with ``shown`` (the text of each source the model read, unnumbered) the
    sources its sentences restate (``how="matched"``); without, the valid ``[n]`` the
    model wrote."""

    def __init__(
        self,
        stream: CompletionStream,
        question: str,
        sources: list[Citation],
        shown: Sequence[str] | None = None,
        embed: Embed | None = None,
    ) -> None:
        self._stream = stream
        self.question = question
        self.sources: tuple[Citation, ...] = tuple(sources)
        self._shown = list(shown) if shown is not None else None
        self._embed = embed
        self._text: list[str] = []
        self._matched: list[list[int]] | None = None

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

    def _model_cited(self) -> list[Citation]:
        if self._shown is not None:  # the model was shown no numbers to cite
            return []
        by_number = {c.number: c for c in self.sources}
        text = "".join(self._text)
        return [by_number[n] for n in cited_numbers(text) if n in by_number]

    def _attributed(self) -> list[list[int]]:
        """Per sentence of the text, the indexes of the sources it restates."""
        if self._matched is None:
            text = str(self.text)
            shown = self._shown or []
            self._matched = attribute(text, self.question, shown, self._embed)
        return self._matched

    @property
    def citations(self) -> list[Citation]:
        if self._shown is None:
            return self._model_cited()
        seen: dict[int, None] = {}
        for indexes in self._attributed():
            for i in indexes:
                seen.setdefault(i, None)
        return [self.sources[i].model_copy(update={"how": "matched"}) for i in seen]

    @property
    def cited_text(self) -> str:
        """The text with ``[n]`` after each sentence attributed to a source (the text
        itself when the model cited by number, or when nothing was attributed)."""
        text = str(self.text)
        if self._shown is None:
            return text
        parts = sentences(text)
        marked = []
        for sentence, indexes in zip(parts, self._attributed(), strict=True):
            numbers = "".join(f"[{self.sources[i].number}]" for i in indexes)
            marked.append(_before_stop(sentence, numbers) if numbers else sentence)
        return " ".join(marked)

    def __enter__(self) -> Answer:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stream.__exit__(*exc)


def _before_stop(sentence: str, marker: str) -> str:
    """``marker`` before the sentence's final punctuation: "It is 8080 [1]." """
    if sentence and sentence[-1] in ".!?":
        return f"{sentence[:-1]} {marker}{sentence[-1]}"
    return f"{sentence} {marker}"
