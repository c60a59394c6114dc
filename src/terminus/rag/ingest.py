"""From documents to stored chunks: load, chunk, dedupe, embed in batches, write.

Everything that can fail on the input (a missing file, an unsupported type, an empty
document, a bad chunking option) fails while *preparing*, before anything is written.
Then chunks are embedded in batches that span small documents, so ingesting many short
documents runs as fast as one big ``embed`` call, and each document is written in its
own transaction as soon as its vectors are ready. A document bigger than a batch
streams its batches into one open transaction instead of holding them all in memory.

A large document (``LARGE_TEXT`` characters or more) is never held as a list of chunks:
preparing counts its chunks in one streaming pass (for the progress total), writing
chunks it again as its batches are embedded. A large file's text is not even kept
between the two: it is read again when its turn comes, and must still hash the same.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from terminus.errors import DimensionMismatchError, DocumentReadError
from terminus.models.progress import Progress
from terminus.rag.chunking import Chunker, make_chunker
from terminus.rag.client import RagClient
from terminus.rag.loaders import KINDS, LoadedDocument, check_not_empty, load_file
from terminus.rag.store import Batch
from terminus.rag.types import Chunk, DocumentRecord, Metadata

DEFAULT_BATCH = 32
#: Documents with at least this many characters are chunked as a stream (see above).
LARGE_TEXT = 1_000_000
_HASH_SLICE = 1 << 20
_PROGRESS_CHARS = 1 << 18


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
    """A document ready to embed: its record and chunker, its chunk count, and either
    its chunks (small documents) or nothing (large ones are chunked again as written)."""

    record: DocumentRecord
    chunker: Chunker
    count: int
    listed: list[Chunk] | None = None
    #: Reads a large file's text again when it is written (its record holds no text).
    reload: Callable[[], str] | None = None

    def with_text(self) -> Prepared:
        if self.reload is None:
            return self
        return replace(self, record=replace(self.record, text=self.reload()), reload=None)

    def chunks(self) -> Iterator[Chunk]:
        if self.listed is not None:
            return iter(self.listed)
        if self.reload is not None:
            raise RuntimeError("with_text() first: the text of this document was not kept")
        return self.chunker.iter_chunks(self.record.text)


def content_hash(text: str) -> str:
    """sha256 of the UTF-8 text, encoded a slice at a time (no second copy of a big text)."""
    digest = hashlib.sha256()
    for i in range(0, len(text), _HASH_SLICE):
        digest.update(text[i : i + _HASH_SLICE].encode("utf-8"))
    return digest.hexdigest()


def prepare_text(
    document: TextDocument, chunking: ChunkingOptions, progress: Progress | None = None
) -> Prepared:
    digest = content_hash(document.text)
    source = document.source or f"text:{digest[:12]}"
    check_not_empty(document.text, source)
    return _prepared(
        document.text, source, document.kind, document.metadata, None, digest, chunking, progress
    )


def prepare_file(
    path: Path, metadata: Metadata, chunking: ChunkingOptions, progress: Progress | None = None
) -> Prepared:
    loaded = load_file(path)
    source = str(path.resolve())
    digest = content_hash(loaded.text)
    prepared = _prepared(
        loaded.text, source, loaded.kind, metadata, loaded.pages, digest, chunking, progress
    )
    if prepared.listed is not None:
        return prepared
    del loaded  # the text is read again when this document's turn comes
    return replace(
        prepared,
        record=replace(prepared.record, text=""),
        reload=lambda: _reload(path, digest),
    )


def _reload(path: Path, digest: str) -> str:
    loaded: LoadedDocument = load_file(path)
    if content_hash(loaded.text) != digest:
        raise DocumentReadError(f"{path}: the file changed while it was being ingested")
    return loaded.text


def _prepared(
    text: str,
    source: str,
    kind: str,
    metadata: Metadata,
    pages: tuple[int, ...] | None,
    digest: str,
    chunking: ChunkingOptions,
    progress: Progress | None = None,
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
    return _chunked(record, chunker, progress)


def _chunked(record: DocumentRecord, chunker: Chunker, progress: Progress | None) -> Prepared:
    text = record.text
    if len(text) < LARGE_TEXT:
        listed = chunker.chunk(text)
        return Prepared(record, chunker, len(listed), listed)
    count = 0
    done = 0
    if progress is not None:
        progress.start(f"chunking {os.path.basename(record.source)}", len(text))
    try:
        for chunk in chunker.iter_chunks(text):
            count += 1
            if progress is not None and chunk.end - done >= _PROGRESS_CHARS:
                progress.advance(chunk.end - done)
                done = chunk.end
        if progress is not None and done < len(text):
            progress.advance(len(text) - done)
    finally:
        if progress is not None:
            progress.finish()
    return Prepared(record, chunker, count)


def rechunk(
    record: DocumentRecord, chunking: ChunkingOptions | None, progress: Progress | None = None
) -> Prepared:
    """A stored document chunked again (by its own recorded options unless given new ones)."""
    options = chunking or ChunkingOptions(
        record.chunking.get("strategy", "auto"),
        record.chunking.get("size"),
        record.chunking.get("overlap"),
    )
    chunker = options.chunker(record.kind)
    return _chunked(replace(record, chunking=chunker.config()), chunker, progress)


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
        vectors = self.client.embed(self.model, list(texts)).vectors
        if vectors.ndim != 2 or vectors.shape[1] != self.dimensions:
            raise DimensionMismatchError(
                f"{self.model} returned {vectors.shape[-1]}-dimensional vectors;"
                f" this workspace stores {self.dimensions}",
                hint="the model changed: reindex the workspace",
            )
        if self.progress is not None:
            self.progress.advance(len(texts))
        return vectors

    def stream(self, chunks: Iterable[Chunk]) -> Iterator[Batch]:
        """``(chunks, vectors)`` one batch at a time (embedded lazily, as consumed)."""
        part: list[Chunk] = []
        for chunk in chunks:
            part.append(chunk)
            if len(part) == self.batch_size:
                yield part, self._batch([c.embed_text() for c in part])
                part = []
        if part:
            yield part, self._batch([c.embed_text() for c in part])

    def plan(self, documents: Sequence[Prepared]) -> Iterator[tuple[Prepared, Iterable[Batch]]]:
        """Each document with its batches, in order.

        Chunks are embedded in exact batches of ``batch_size`` that run across documents
        (the same calls as embedding the flat list of chunk texts), and a document is
        yielded as soon as all its vectors are in. A big document met with nothing pending
        streams its batches instead, embedded as its transaction consumes them; a large
        one (not held as a list) first flushes what is pending, then streams.
        """
        queue: list[Prepared] = []  # documents not yet handed out, in order
        texts: list[str] = []  # their chunk texts not yet embedded
        ready: list[Any] = []  # vectors embedded but not yet handed out, in order
        for document in documents:
            if document.listed is None and queue:
                if texts:
                    ready.append(self._batch(texts))
                    texts = []
                ready = yield from self._complete(queue, ready)
            if not queue and (document.listed is None or document.count >= self.batch_size):
                document = document.with_text()
                yield document, self.stream(document.chunks())
                continue
            queue.append(document)
            texts.extend(c.embed_text() for c in document.chunks())
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
        while queue and offset + queue[0].count <= len(vectors):
            document = queue.pop(0)
            count = document.count
            yield document, [(document.listed or [], vectors[offset : offset + count])]
            offset += count
        return [vectors[offset:]] if offset < len(vectors) else []


ProgressCallback = Callable[[str, int, int | None], object]


class CallbackProgress:
    """Reports long work to a function ``callback(stage, done, total)``.

    ``stage`` says what is running ("chunking big.txt", "embedding into notes"),
    ``done`` counts its units so far (characters while chunking, chunks while
    embedding) out of ``total`` (None when unknown). Called at each step.
    """

    def __init__(self, callback: ProgressCallback) -> None:
        self._callback = callback
        self._stage = ""
        self._done = 0
        self._total: int | None = None

    def start(self, description: str, total: int | None, initial: int = 0) -> None:
        self._stage, self._done, self._total = description, initial, total
        self._callback(self._stage, self._done, self._total)

    def advance(self, n: int) -> None:
        self._done += n
        self._callback(self._stage, self._done, self._total)

    def finish(self) -> None:
        pass


class ChunkProgress:
    """A tqdm bar counting embedded chunks (on stderr)."""

    def __init__(self) -> None:
        self._bar: Any = None

    def start(self, description: str, total: int | None, initial: int = 0) -> None:
        from tqdm import tqdm

        self.finish()
        chars = description.startswith("chunking")  # the pass that counts a large file's chunks
        self._bar = tqdm(
            total=total,
            initial=initial,
            desc=description,
            unit="char" if chars else "chunk",
            unit_scale=chars,
            leave=False,
        )

    def advance(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
