"""What a RAG workspace hands back: documents, search results, ingest outcomes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

_FROZEN = ConfigDict(frozen=True, extra="forbid")

#: Metadata is a flat JSON object supplied by the user (strings, numbers, booleans).
Metadata = dict[str, Any]


@dataclass(frozen=True)
class Chunk:
    """A span of a document's text. ``context`` (a Markdown heading path) is embedded
    with the text but is not part of the span ``text[start:end]``."""

    index: int
    start: int
    end: int
    text: str
    context: str = ""

    def embed_text(self) -> str:
        return f"{self.context}\n{self.text}" if self.context else self.text


@dataclass(frozen=True)
class DocumentRecord:
    """One ingested document as a store keeps it."""

    id: str
    source: str
    content_hash: str
    kind: str
    text: str
    metadata: Metadata = field(default_factory=dict)
    chunking: dict[str, Any] = field(default_factory=dict)
    pages: tuple[int, ...] | None = None  # char offset where each PDF page starts
    added_at: float = 0.0


class ChunkPosition(BaseModel):
    """Where a chunk sits in its document: its index and ``[start, end)`` char offsets
    into the extracted text (and the 1-based PDF page its start falls on)."""

    model_config = _FROZEN
    index: int
    start: int
    end: int
    page: int | None = None


class SearchResult(BaseModel):
    model_config = _FROZEN
    score: float
    chunk_id: int
    document_id: str
    source: str
    text: str
    position: ChunkPosition
    heading: str = ""
    metadata: Metadata = {}

    def label(self) -> str:
        """``source#index [start:end]`` — enough for a person to find the passage."""
        page = f" p.{self.position.page}" if self.position.page else ""
        return (
            f"{self.source}#{self.position.index}{page} [{self.position.start}:{self.position.end}]"
        )

    def __repr__(self) -> str:
        # a list of hits prints one short line each, not every field of every chunk
        return f"SearchResult({self.score:.3f}, {self.label()!r}, {_snippet(self.text)!r})"

    def __str__(self) -> str:
        return f"{self.score:.3f}  {self.label()}  {_snippet(self.text)}"


class Citation(BaseModel):
    """A source as numbered in an answer's prompt: ``[number]`` refers to ``result``."""

    model_config = _FROZEN
    number: int
    result: SearchResult
    # "model": the answer's text wrote [number]; "matched": a sentence of the answer was
    # attributed to this source after the fact (terminus.rag.attribution)
    how: Literal["model", "matched"] = "model"

    def __repr__(self) -> str:
        return f"Citation([{self.number}] {self.result.label()!r})"

    def __str__(self) -> str:
        return f"[{self.number}] {self.result.label()}"


class DocumentInfo(BaseModel):
    model_config = _FROZEN
    id: str
    source: str
    kind: str
    chunks: int
    characters: int
    metadata: Metadata = {}
    added_at: float


class IngestResult(BaseModel):
    """``added``, ``replaced`` (same source, new content: the old version was removed in the
    same transaction) or ``skipped`` (the same content is already in the workspace)."""

    model_config = _FROZEN
    document_id: str
    source: str
    status: Literal["added", "replaced", "skipped"]
    chunks: int
    replaced: tuple[str, ...] = ()


class WorkspaceInfo(BaseModel):
    model_config = _FROZEN
    name: str
    path: str
    model: str
    dimensions: int
    documents: int
    chunks: int
    created_at: float


def _snippet(text: str, width: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
