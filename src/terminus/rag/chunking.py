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
Every chunk's ``text`` is exactly ``document[start:end]``. ``iter_chunks`` yields chunks
as it finds them and holds only the chunk being built, so a document of any size is
chunked in memory proportional to one chunk (plus the document's own text).
"""

from __future__ import annotations

import re
from collections import deque
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
    def iter_chunks(self, text: str) -> Iterator[Chunk]: ...
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


def _windows(text: str, start: int, end: int, size: int, overlap: int) -> Iterator[Span]:
    """Windows of ``size`` words, each starting ``size - overlap`` words after the last;
    the last window ends at the last word. Holds one window of word spans at a time."""
    step = size - overlap
    window: deque[Span] = deque()
    for match in _WORD.finditer(text, start, end):
        if len(window) == size:  # full, and more words follow: emit it and move on
            yield window[0][0], window[-1][1]
            for _ in range(step):
                window.popleft()
        window.append(match.span())
    if window:
        yield window[0][0], window[-1][1]


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


def _units(text: str, start: int, end: int) -> Iterator[_Unit]:
    for p, (ps, pe) in enumerate(_paragraphs(text, start, end)):
        for s, e in _sentences(text, ps, pe):
            yield _Unit(s, e, _count_words(text, s, e), p)


def _count_words(text: str, start: int, end: int) -> int:
    return sum(1 for _ in _WORD.finditer(text, start, end))


def _pack(text: str, start: int, end: int, size: int, overlap: int) -> Iterator[Span]:
    """Sentences of ``text[start:end]`` packed into spans of at most ``size`` words."""
    current: list[_Unit] = []
    words = 0
    for unit in _units(text, start, end):
        if unit.words > size:  # one very long sentence: fall back to word windows
            if current:
                yield current[0].start, current[-1].end
            current, words = [], 0
            yield from _windows(text, unit.start, unit.end, size, overlap)
            continue
        new_paragraph = bool(current) and unit.paragraph != current[-1].paragraph
        if current and (words + unit.words > size or (new_paragraph and words >= size // 2)):
            yield current[0].start, current[-1].end
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
    if current:
        yield current[0].start, current[-1].end


def _chunks(text: str, spans: Iterator[tuple[int, int, str]]) -> Iterator[Chunk]:
    return (Chunk(i, s, e, text[s:e], context) for i, (s, e, context) in enumerate(spans))


class _ChunkList:
    """``chunk`` as the list of ``iter_chunks`` (shared by the three chunkers)."""

    def iter_chunks(self, text: str) -> Iterator[Chunk]:
        raise NotImplementedError

    def chunk(self, text: str) -> list[Chunk]:
        return list(self.iter_chunks(text))


@dataclass(frozen=True)
class TokenWindowChunker(_ChunkList):
    size: int = DEFAULT_SIZE
    overlap: int = -1  # a fifth of size

    def __post_init__(self) -> None:
        _resolve(self)

    def iter_chunks(self, text: str) -> Iterator[Chunk]:
        spans = _windows(text, 0, len(text), self.size, self.overlap)
        return _chunks(text, ((s, e, "") for s, e in spans))

    def config(self) -> dict[str, Any]:
        return {"strategy": "tokens", "size": self.size, "overlap": self.overlap}


@dataclass(frozen=True)
class SentenceChunker(_ChunkList):
    size: int = DEFAULT_SIZE
    overlap: int = -1  # a fifth of size

    def __post_init__(self) -> None:
        _resolve(self)

    def iter_chunks(self, text: str) -> Iterator[Chunk]:
        spans = _pack(text, 0, len(text), self.size, self.overlap)
        return _chunks(text, ((s, e, "") for s, e in spans))

    def config(self) -> dict[str, Any]:
        return {"strategy": "sentences", "size": self.size, "overlap": self.overlap}


#: The line boundaries ``str.splitlines`` uses, so offsets match it exactly.
_LINE_END = re.compile(r"\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def _lines(text: str) -> Iterator[str]:
    """``text.splitlines(keepends=True)``, one line at a time."""
    pos = 0
    for match in _LINE_END.finditer(text):
        yield text[pos : match.end()]
        pos = match.end()
    if pos < len(text):
        yield text[pos:]


def markdown_sections(text: str) -> list[tuple[tuple[str, ...], int, int]]:
    """``(heading path, body start, body end)`` for each section, headings excluded.

    ATX (``## Title``) and setext (``Title`` over ``===``/``---``) headings count;
    lines inside fenced code blocks never do.
    """
    return list(iter_markdown_sections(text))


def iter_markdown_sections(text: str) -> Iterator[tuple[tuple[str, ...], int, int]]:
    """``markdown_sections``, one section at a time."""
    path: list[tuple[int, str]] = []
    body_start = 0
    fence: str | None = None
    offset = 0
    previous: tuple[int, int, str] | None = None  # (line start, line end, text) of a text line
    for line in _lines(text):
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
        if _has_text(text, body_start, starts_at):
            yield tuple(t for _, t in path), body_start, starts_at
        while path and path[-1][0] >= level:
            path.pop()
        path.append((level, title))
        body_start = offset
        previous = None
    if _has_text(text, body_start, len(text)):
        yield tuple(t for _, t in path), body_start, len(text)


def _has_text(text: str, start: int, end: int) -> bool:
    return _WORD.search(text, start, end) is not None


@dataclass(frozen=True)
class MarkdownChunker(_ChunkList):
    size: int = DEFAULT_SIZE
    overlap: int = -1  # a fifth of size

    def __post_init__(self) -> None:
        _resolve(self)

    def iter_chunks(self, text: str) -> Iterator[Chunk]:
        return _chunks(text, self._spans(text))

    def _spans(self, text: str) -> Iterator[tuple[int, int, str]]:
        for path, start, end in iter_markdown_sections(text):
            context = " > ".join(path)
            for s, e in _pack(text, start, end, self.size, self.overlap):
                yield s, e, context

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
