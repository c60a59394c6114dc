"""Splitting a document's text into chunks to embed.

Three strategies, all measured in words (a word is about 1.3 embedding tokens for
English prose; sizes default well under all-MiniLM-L6-v2's 256-token window):

- ``tokens``: fixed windows of ``size`` words, consecutive windows sharing ``overlap``.
- ``sentences``: whole sentences packed up to ``size`` words, preferring to end a chunk at
  a paragraph break; the last sentences of a chunk (up to ``overlap`` words) start the next.
- ``markdown``: the document is cut at headings first; each section is packed like
  ``sentences`` and its heading path ("Guide > Install > Linux") travels with every chunk
  as context (embedded, shown in results, not part of the chunk's character span).

``auto`` picks ``markdown`` for Markdown and HTML documents and ``sentences`` otherwise.
Every chunk's ``text`` is exactly ``document[start:end]``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from terminus.errors import InvalidParameterError
from terminus.rag.types import Chunk

DEFAULT_SIZE = 160
#: The default overlap is a fifth of the chunk size (32 words for 160).
OVERLAP_FRACTION = 5
STRATEGIES = ("auto", "tokens", "sentences", "markdown")

_WORD = re.compile(r"\S+")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
_SENTENCE_END = re.compile(r"[.!?][\"'\u201d\u2019)\]]*\s+")
_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")

Span = tuple[int, int]


class Chunker(Protocol):
    def chunk(self, text: str) -> list[Chunk]: ...
    def config(self) -> dict[str, Any]: ...


def _resolve(chunker: Any) -> None:
    """Fill in the default overlap (``-1``) and validate sizes, for the frozen dataclasses."""
    if chunker.overlap == -1:
        object.__setattr__(chunker, "overlap", chunker.size // OVERLAP_FRACTION)
    _check(chunker.size, chunker.overlap)


def _check(size: int, overlap: int) -> None:
    if size < 8:
        raise InvalidParameterError(f"chunk size must be at least 8 words, not {size}")
    if not 0 <= overlap <= size // 2:
        raise InvalidParameterError(
            f"overlap must be between 0 and half the chunk size ({size // 2})"
        )


def _windows(text: str, start: int, end: int, size: int, overlap: int) -> list[Span]:
    words = [m.span() for m in _WORD.finditer(text, start, end)]
    spans: list[Span] = []
    step = size - overlap
    for i in range(0, len(words), step):
        window = words[i : i + size]
        spans.append((window[0][0], window[-1][1]))
        if i + size >= len(words):
            break
    return spans


def _trimmed(text: str, start: int, end: int) -> Span | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


def _paragraphs(text: str, start: int, end: int) -> Iterator[Span]:
    pos = start
    for m in _PARAGRAPH_BREAK.finditer(text, start, end):
        span = _trimmed(text, pos, m.start())
        if span:
            yield span
        pos = m.end()
    span = _trimmed(text, pos, end)
    if span:
        yield span


def _sentences(text: str, start: int, end: int) -> Iterator[Span]:
    pos = start
    for m in _SENTENCE_END.finditer(text, start, end):
        following = text[m.end()] if m.end() < end else ""
        if following.islower():  # "e.g. the", "approx. five": not a sentence end
            continue
        span = _trimmed(text, pos, m.end())
        if span:
            yield span
        pos = m.end()
    span = _trimmed(text, pos, end)
    if span:
        yield span


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    words: int
    paragraph: int


def _pack(text: str, start: int, end: int, size: int, overlap: int) -> list[Span]:
    """Sentences of ``text[start:end]`` packed into spans of at most ``size`` words."""
    units = [
        _Unit(s, e, len(text[s:e].split()), p)
        for p, (ps, pe) in enumerate(_paragraphs(text, start, end))
        for s, e in _sentences(text, ps, pe)
    ]
    spans: list[Span] = []
    current: list[_Unit] = []
    words = 0

    def flush() -> None:
        if current:
            spans.append((current[0].start, current[-1].end))

    for unit in units:
        if unit.words > size:  # one very long sentence: fall back to word windows
            flush()
            current, words = [], 0
            spans.extend(_windows(text, unit.start, unit.end, size, overlap))
            continue
        new_paragraph = bool(current) and unit.paragraph != current[-1].paragraph
        if current and (words + unit.words > size or (new_paragraph and words >= size // 2)):
            flush()
            carried: list[_Unit] = []
            carried_words = 0
            for previous in reversed(current):
                if previous.paragraph != unit.paragraph or carried_words + previous.words > overlap:
                    break
                carried.insert(0, previous)
                carried_words += previous.words
            if carried_words + unit.words > size:
                carried, carried_words = [], 0
            current, words = carried, carried_words
        current.append(unit)
        words += unit.words
    flush()
    return spans


def _chunks(text: str, spans: list[tuple[int, int, str]]) -> list[Chunk]:
    return [Chunk(i, s, e, text[s:e], context) for i, (s, e, context) in enumerate(spans)]


@dataclass(frozen=True)
class TokenWindowChunker:
    size: int = DEFAULT_SIZE
    overlap: int = -1  # a fifth of size

    def __post_init__(self) -> None:
        _resolve(self)

    def chunk(self, text: str) -> list[Chunk]:
        spans = _windows(text, 0, len(text), self.size, self.overlap)
        return _chunks(text, [(s, e, "") for s, e in spans])

    def config(self) -> dict[str, Any]:
        return {"strategy": "tokens", "size": self.size, "overlap": self.overlap}


@dataclass(frozen=True)
class SentenceChunker:
    size: int = DEFAULT_SIZE
    overlap: int = -1  # a fifth of size

    def __post_init__(self) -> None:
        _resolve(self)

    def chunk(self, text: str) -> list[Chunk]:
        spans = _pack(text, 0, len(text), self.size, self.overlap)
        return _chunks(text, [(s, e, "") for s, e in spans])

    def config(self) -> dict[str, Any]:
        return {"strategy": "sentences", "size": self.size, "overlap": self.overlap}


def markdown_sections(text: str) -> list[tuple[tuple[str, ...], int, int]]:
    """``(heading path, body start, body end)`` for each section, headings excluded.

    ATX (``## Title``) and setext (``Title`` over ``===``/``---``) headings count;
    lines inside fenced code blocks never do.
    """
    sections: list[tuple[tuple[str, ...], int, int]] = []
    path: list[tuple[int, str]] = []
    body_start = 0
    fence: str | None = None
    offset = 0
    previous: tuple[int, int, str] | None = None  # (line start, line end, text) of a text line
    for line in text.splitlines(keepends=True):
        line_start, offset = offset, offset + len(line)
        stripped = line.rstrip("\r\n")
        fenced = _FENCE.match(stripped)
        if fence is not None:
            if fenced and fenced.group(1)[0] == fence[0] and len(fenced.group(1)) >= len(fence):
                fence = None
            continue
        if fenced:
            fence = fenced.group(1)
            previous = None
            continue
        heading: tuple[int, str, int] | None = None  # level, title, where the heading starts
        atx = _ATX.match(stripped)
        setext = _SETEXT.match(stripped)
        if atx:
            heading = (len(atx.group(1)), atx.group(2).strip(), line_start)
        elif setext and previous is not None:
            heading = (1 if setext.group(1)[0] == "=" else 2, previous[2].strip(), previous[0])
        if heading is None:
            previous = (line_start, offset, stripped) if stripped.strip() else None
            continue
        level, title, starts_at = heading
        sections.append((tuple(t for _, t in path), body_start, starts_at))
        while path and path[-1][0] >= level:
            path.pop()
        path.append((level, title))
        body_start = offset
        previous = None
    sections.append((tuple(t for _, t in path), body_start, len(text)))
    return [(p, s, e) for p, s, e in sections if text[s:e].strip()]


@dataclass(frozen=True)
class MarkdownChunker:
    size: int = DEFAULT_SIZE
    overlap: int = -1  # a fifth of size

    def __post_init__(self) -> None:
        _resolve(self)

    def chunk(self, text: str) -> list[Chunk]:
        spans: list[tuple[int, int, str]] = []
        for path, start, end in markdown_sections(text):
            context = " > ".join(path)
            spans.extend(
                (s, e, context) for s, e in _pack(text, start, end, self.size, self.overlap)
            )
        return _chunks(text, spans)

    def config(self) -> dict[str, Any]:
        return {"strategy": "markdown", "size": self.size, "overlap": self.overlap}


def make_chunker(
    strategy: str = "auto",
    *,
    kind: str = "text",
    size: int | None = None,
    overlap: int | None = None,
) -> Chunker:
    """The chunker for ``strategy`` (``auto`` decides by the document ``kind``)."""
    size = DEFAULT_SIZE if size is None else size
    overlap = size // OVERLAP_FRACTION if overlap is None else overlap
    if strategy == "auto":
        strategy = "markdown" if kind in ("markdown", "html") else "sentences"
    if strategy == "tokens":
        return TokenWindowChunker(size, overlap)
    if strategy == "sentences":
        return SentenceChunker(size, overlap)
    if strategy == "markdown":
        return MarkdownChunker(size, overlap)
    raise InvalidParameterError(
        f"unknown chunking strategy {strategy!r}", hint="one of " + ", ".join(STRATEGIES)
    )


def chunker_from_config(config: dict[str, Any], kind: str) -> Chunker:
    return make_chunker(
        str(config.get("strategy", "auto")),
        kind=kind,
        size=config.get("size"),
        overlap=config.get("overlap"),
    )
