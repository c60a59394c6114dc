"""From documents to stored chunks: load, chunk, dedupe, embed in batches, write.

Everything that can fail on the input (a missing file, an unsupported type, an empty
document, a bad chunking option) fails while *preparing*, before anything is written.
Then chunks are embedded in batches that span small documents, so ingesting many short
documents runs as fast as one big ``embed`` call, and each document is written in its
own transaction as soon as its vectors are ready. A document bigger than a batch
streams its batches into one open transaction instead of holding them all in memory.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from terminus.errors import DimensionMismatchError
from terminus.models.progress import Progress
from terminus.rag.chunking import Chunker, make_chunker
from terminus.rag.client import RagClient
from terminus.rag.loaders import KINDS, check_not_empty, load_file
from terminus.rag.store import Batch
from terminus.rag.types import Chunk, DocumentRecord, Metadata

DEFAULT_BATCH = 32


@dataclass(frozen=True)
class TextDocument:
    """A document given as a string. ``kind`` is ``text`` or ``markdown`` (for chunking)."""

    text: str
    source: str | None = None
    metadata: Metadata = field(default_factory=dict)
    kind: str = "text"


@dataclass(frozen=True)
class ChunkingOptions:
    strategy: str = "auto"
    size: int | None = None
    overlap: int | None = None

    def chunker(self, kind: str) -> Chunker:
        return make_chunker(self.strategy, kind=kind, size=self.size, overlap=self.overlap)


@dataclass(frozen=True)
class Prepared:
    record: DocumentRecord
    chunks: list[Chunk]


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def prepare_text(document: TextDocument, chunking: ChunkingOptions) -> Prepared:
    digest = content_hash(document.text)
    source = document.source or f"text:{digest[:12]}"
    check_not_empty(document.text, source)
    return _prepared(
        document.text, source, document.kind, document.metadata, None, digest, chunking
    )


def prepare_file(path: Path, metadata: Metadata, chunking: ChunkingOptions) -> Prepared:
    loaded = load_file(path)
    source = str(path.resolve())
    digest = content_hash(loaded.text)
    return _prepared(loaded.text, source, loaded.kind, metadata, loaded.pages, digest, chunking)


def _prepared(
    text: str,
    source: str,
    kind: str,
    metadata: Metadata,
    pages: tuple[int, ...] | None,
    digest: str,
    chunking: ChunkingOptions,
) -> Prepared:
    chunker = chunking.chunker(kind)
    record = DocumentRecord(
        id=digest[:16],
        source=source,
        content_hash=digest,
        kind=kind,
        text=text,
        metadata=dict(metadata),
        chunking=chunker.config(),
        pages=pages,
        added_at=time.time(),
    )
    return Prepared(record, chunker.chunk(text))


def rechunk(record: DocumentRecord, chunking: ChunkingOptions | None) -> Prepared:
    """A stored document chunked again (by its own recorded options unless given new ones)."""
    options = chunking or ChunkingOptions(
        record.chunking.get("strategy", "auto"),
        record.chunking.get("size"),
        record.chunking.get("overlap"),
    )
    chunker = options.chunker(record.kind)
    return Prepared(replace(record, chunking=chunker.config()), chunker.chunk(record.text))


def expand_paths(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files as given; directories walked (sorted) for the file types we read."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            files.extend(
                p for p in sorted(path.rglob("*")) if p.is_file() and p.suffix.lower() in KINDS
            )
        else:
            files.append(path)
    return files


class Embedder:
    """Embeds chunk texts with the workspace's model, checking the dimension."""

    def __init__(
        self,
        client: RagClient,
        model: str,
        dimensions: int,
        batch_size: int = DEFAULT_BATCH,
        progress: Progress | None = None,
    ) -> None:
        self.client = client
        self.model = model
        self.dimensions = dimensions
        self.batch_size = batch_size
        self.progress = progress

    def _batch(self, texts: Sequence[str]) -> Any:
        vectors = self.client.embed(list(texts), model=self.model).vectors
        if vectors.ndim != 2 or vectors.shape[1] != self.dimensions:
            raise DimensionMismatchError(
                f"{self.model} returned {vectors.shape[-1]}-dimensional vectors;"
                f" this workspace stores {self.dimensions}",
                hint="the model changed: reindex the workspace",
            )
        if self.progress is not None:
            self.progress.advance(len(texts))
        return vectors

    def stream(self, chunks: Sequence[Chunk]) -> Iterator[Batch]:
        """``(chunks, vectors)`` one batch at a time (embedded lazily, as consumed)."""
        for i in range(0, len(chunks), self.batch_size):
            part = chunks[i : i + self.batch_size]
            yield part, self._batch([c.embed_text() for c in part])

    def plan(self, documents: Sequence[Prepared]) -> Iterator[tuple[Prepared, Iterable[Batch]]]:
        """Each document with its batches, in order.

        Chunks are embedded in exact batches of ``batch_size`` that run across documents
        (the same calls as embedding the flat list of chunk texts), and a document is
        yielded as soon as all its vectors are in. A big document met with nothing pending
        streams its batches instead, embedded as its transaction consumes them.
        """
        queue: list[Prepared] = []  # documents not yet handed out, in order
        texts: list[str] = []  # their chunk texts not yet embedded
        ready: list[Any] = []  # vectors embedded but not yet handed out, in order
        for document in documents:
            if not queue and len(document.chunks) >= self.batch_size:
                yield document, self.stream(document.chunks)
                continue
            queue.append(document)
            texts.extend(c.embed_text() for c in document.chunks)
            while len(texts) >= self.batch_size:
                ready.append(self._batch(texts[: self.batch_size]))
                del texts[: self.batch_size]
                ready = yield from self._complete(queue, ready)
        if texts:
            ready.append(self._batch(texts))
        yield from self._complete(queue, ready)

    @staticmethod
    def _complete(
        queue: list[Prepared], ready: list[Any]
    ) -> Generator[tuple[Prepared, Iterable[Batch]], None, list[Any]]:
        """Hand out the queued documents whose vectors are all in; return the rest."""
        if not ready:
            return ready
        vectors = np.concatenate(ready) if len(ready) > 1 else ready[0]
        offset = 0
        while queue and offset + len(queue[0].chunks) <= len(vectors):
            document = queue.pop(0)
            count = len(document.chunks)
            yield document, [(document.chunks, vectors[offset : offset + count])]
            offset += count
        return [vectors[offset:]] if offset < len(vectors) else []


class ChunkProgress:
    """A tqdm bar counting embedded chunks (on stderr)."""

    def __init__(self) -> None:
        self._bar: Any = None

    def start(self, description: str, total: int | None, initial: int = 0) -> None:
        from tqdm import tqdm

        self.finish()
        self._bar = tqdm(total=total, initial=initial, desc=description, unit="chunk", leave=False)

    def advance(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
