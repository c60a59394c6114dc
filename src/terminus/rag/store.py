"""The storage contract behind a workspace, so a server store can replace the embedded one.

A :class:`VectorStore` keeps documents, their chunks and one vector per chunk, and finds
the chunks nearest a query vector. The embedded implementation is
:class:`terminus.rag.sqlite_store.SqliteStore`; one backed by pgvector or Qdrant implements
the same methods (see docs/rag.md, "Swapping the store") and is handed to
``Workspace(client, name, store=...)``.

The rules every implementation keeps:

- ``add_document`` is atomic: after a crash the document is either entirely there
  (document, every chunk, every vector) or not at all, and the documents listed in
  ``replace`` are removed in that same step. ``batches`` is consumed inside it; it yields
  ``(chunks, vectors)`` pairs with ``vectors.shape == (len(chunks), dimensions)``.
- ``rebuild`` replaces every chunk of every document and the store's model in one
  atomic step (a reindex after a model change).
- Vectors are float32 and L2-normalized; scores are inner products (cosine similarity).
- A vector of the wrong dimension raises ``DimensionMismatchError`` and writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from terminus.rag.types import Chunk, DocumentInfo, DocumentRecord, SearchResult

Batch = tuple[Sequence[Chunk], Any]  # (chunks, float32 array of shape (len(chunks), dims))
#: Equality on metadata keys: a document matches when every key has the value given.
Filter = Mapping[str, Any]


@dataclass(frozen=True)
class StoreConfig:
    """What a workspace is bound to: the embedding model (canonical id) and its dimension."""

    model: str
    dimensions: int


@runtime_checkable
class VectorStore(Protocol):
    @property
    def config(self) -> StoreConfig: ...

    # -- documents ------------------------------------------------------------------
    def find_by_hash(self, content_hash: str) -> str | None:
        """The id of the document with this content, if any."""
        ...

    def find_by_source(self, source: str) -> list[str]:
        """Ids of the documents ingested from ``source``."""
        ...

    def add_document(
        self, document: DocumentRecord, batches: Iterable[Batch], replace: Sequence[str] = ()
    ) -> int:
        """Atomically add a document with its chunks and vectors; returns the chunk count,
        or 0 (writing nothing) when a document with the same content hash is already there."""
        ...

    def delete_document(self, document_id: str) -> bool: ...

    def documents(self) -> list[DocumentInfo]:
        """Every document (without its text), oldest first."""
        ...

    def document_records(self) -> Iterator[DocumentRecord]:
        """Every document with its text, oldest first (what a reindex re-chunks)."""
        ...

    def rebuild(
        self, config: StoreConfig, items: Iterable[tuple[DocumentRecord, Iterable[Batch]]]
    ) -> None:
        """Atomically replace all chunks, and the bound model, with ``items`` (every
        document, its record's ``chunking`` updated)."""
        ...

    def counts(self) -> tuple[int, int]:
        """``(documents, chunks)``."""
        ...

    # -- search ---------------------------------------------------------------------
    def search(self, vector: Any, top_k: int, filter: Filter | None = None) -> list[SearchResult]:
        """The ``top_k`` chunks nearest ``vector`` (cosine), best first."""
        ...

    def keyword_search(
        self, query: str, top_k: int, filter: Filter | None = None
    ) -> list[SearchResult]:
        """The ``top_k`` chunks best matching ``query``'s words (BM25), best first.
        A store without a keyword index returns ``[]``."""
        ...

    def close(self) -> None: ...


def metadata_matches(metadata: Mapping[str, Any], wanted: Filter) -> bool:
    """Equality on every key. A string filter value also matches a number or boolean that
    prints the same (``--filter year=2020`` finds ``{"year": 2020}``)."""
    return all(key in metadata and _equal(metadata[key], value) for key, value in wanted.items())


def _equal(actual: Any, wanted: Any) -> bool:
    if isinstance(actual, bool) or isinstance(wanted, bool):
        if isinstance(actual, bool) and isinstance(wanted, str):
            return str(actual).lower() == wanted.lower()
        return actual is wanted
    if isinstance(actual, int | float) and isinstance(wanted, str):
        return str(actual) == wanted
    return bool(actual == wanted)
