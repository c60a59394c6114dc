"""The read side of a workspace file: an in-memory snapshot searched by vector and keyword.

The snapshot is the vector matrix plus each document's id, source, metadata and page
offsets (what filters and results need). It is loaded on first use, patched in place after
this process's own writes, and reloaded whole when the file's ``generation`` counter says
another connection committed since.
"""

from __future__ import annotations

import bisect
import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from terminus.rag.ann import snapshot_key
from terminus.rag.ann_keeper import AnnKeeper
from terminus.rag.keywords import fts_query
from terminus.rag.matrix import VectorMatrix
from terminus.rag.sqlite_db import read_meta
from terminus.rag.store import Filter, StoreConfig, metadata_matches
from terminus.rag.types import ChunkPosition, DocumentRecord, SearchResult

_LOAD_PAGE = 8192


@dataclass(frozen=True)
class _Doc:
    id: str
    source: str
    metadata: dict[str, Any]
    pages: tuple[int, ...] | None


class SearchIndex:
    """Searches through its own connection, so it never sees a write still in progress."""

    def __init__(
        self,
        reader: sqlite3.Connection,
        config: StoreConfig,
        directory: Path | None = None,
        index: str = "auto",
    ) -> None:
        self.reader = reader
        self.lock = threading.RLock()
        self.config = config
        self._matrix = VectorMatrix(config.dimensions)
        self._docs: dict[int, _Doc] = {}
        self._generation = -1  # nothing loaded yet
        # an approximate index for large snapshots (terminus.rag.ann), saved in directory
        self.ann = AnnKeeper(directory, index, self.lock) if directory is not None else None

    @property
    def memory_bytes(self) -> int:
        return self._matrix.nbytes

    @property
    def loaded(self) -> bool:
        """Whether a snapshot is in memory (else a write need not keep its vectors for it)."""
        return self._generation != -1

    # -- keeping the snapshot current ------------------------------------------------------

    def refresh(self) -> None:
        """Reload if any connection committed a write since the snapshot was taken."""
        row = self.reader.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        if row is not None and int(row[0]) == self._generation:
            return
        self.reader.execute("BEGIN")  # one read snapshot for the whole load
        try:
            meta = read_meta(self.reader)
            config = StoreConfig(meta["model"], int(meta["dimensions"]))
            docs = {
                r[0]: _Doc(r[1], r[2], json.loads(r[3]), tuple(json.loads(r[4])) if r[4] else None)
                for r in self.reader.execute(
                    "SELECT seq, id, source, metadata, pages FROM documents"
                )
            }
            total = self.reader.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
            matrix = VectorMatrix(config.dimensions, capacity=int(total))
            cursor = self.reader.execute("SELECT id, doc_seq, vector FROM chunks ORDER BY id")
            while rows := cursor.fetchmany(_LOAD_PAGE):
                vectors = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32)
                matrix.append(
                    np.fromiter((r[0] for r in rows), np.int64, len(rows)),
                    np.fromiter((r[1] for r in rows), np.int64, len(rows)),
                    vectors.reshape(len(rows), config.dimensions),
                )
        finally:
            self.reader.execute("COMMIT")
        self.config, self._docs, self._matrix = config, docs, matrix
        self._generation = int(meta["generation"])
        if self.ann is not None:
            key = snapshot_key(config.model, config.dimensions, meta.get("created_at", ""))
            self.ann.snapshot_loaded(key, self._generation, *matrix.rows())

    def committed(
        self,
        generation: int,
        removed: list[int],
        added: tuple[int, DocumentRecord, Any, Any] | None = None,
    ) -> None:
        """Patch the snapshot after this process committed the write that started from
        ``generation``: documents ``removed`` (by seq), and ``added`` as
        ``(seq, record, chunk ids, vectors)``. If anyone else wrote in between, the next
        search reloads instead."""
        with self.lock:
            if self._generation != generation:
                return
            removed_ids = added_ids = added_vectors = None
            if removed:
                seqs = np.array(removed, dtype=np.int64)
                removed_ids = self._matrix.chunk_ids_of(seqs)
                self._matrix.remove_documents(seqs)
                for seq in removed:
                    self._docs.pop(seq, None)
            if added is not None:
                seq, record, ids, vectors = added
                self._docs[seq] = _Doc(record.id, record.source, record.metadata, record.pages)
                if len(ids):
                    self._matrix.append(ids, np.full(len(ids), seq, dtype=np.int64), vectors)
                    added_ids, added_vectors = ids, self._matrix.check(vectors)
            self._generation = generation + 1
            if self.ann is not None:
                self.ann.patched(self._generation, removed_ids, added_ids, added_vectors)

    def reload_later(self) -> None:
        """Drop the snapshot: the next search loads it from the file."""
        with self.lock:
            self._matrix = VectorMatrix(self.config.dimensions)
            self._docs = {}
            self._generation = -1
            if self.ann is not None:
                self.ann.drop()

    def invalidate(self, config: StoreConfig) -> None:
        with self.lock:
            self.config = config
            self._matrix = VectorMatrix(config.dimensions)
            self._generation = -1
            if self.ann is not None:
                self.ann.drop()

    # -- search ------------------------------------------------------------------------

    def _allowed(self, filter: Filter | None) -> Any:
        if not filter:
            return None
        return np.array(
            [seq for seq, doc in self._docs.items() if metadata_matches(doc.metadata, filter)],
            dtype=np.int64,
        )

    def search(self, vector: Any, top_k: int, filter: Filter | None = None) -> list[SearchResult]:
        with self.lock:
            self.refresh()
            approximate = self.ann.ready if self.ann is not None and not filter else None
            if approximate is not None and top_k > 0:
                return self._hydrate(approximate.search(self._matrix.check(vector), top_k))
            return self._hydrate(self._matrix.top_k(vector, top_k, self._allowed(filter)))

    def build_index(self) -> bool:
        """Load the snapshot and wait for its approximate index (built now if needed);
        whether there is one (the mode and size may call for exact search)."""
        with self.lock:
            self.refresh()
            if self.ann is None:
                return False
        return self.ann.wait()

    def close_index(self) -> None:
        """Save a patched approximate index that still matches the file."""
        if self.ann is None:
            return
        with self.lock:
            if not self.ann.dirty:
                self.ann.close(-1)
                return
            row = self.reader.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
            self.ann.close(int(row[0]) if row is not None else -1)

    def keyword_search(
        self, query: str, top_k: int, filter: Filter | None = None
    ) -> list[SearchResult]:
        match = fts_query(query)
        if match is None or top_k <= 0:
            return []
        with self.lock:
            self.refresh()
            allowed = self._allowed(filter)
            sql = (
                "SELECT f.rowid, bm25(chunk_fts) AS rank FROM chunk_fts f"
                " JOIN chunks c ON c.id = f.rowid WHERE chunk_fts MATCH ?"
            )
            params: list[Any] = [match]
            if allowed is not None:
                sql += " AND c.doc_seq IN (SELECT value FROM json_each(?))"
                params.append(json.dumps(allowed.tolist()))
            sql += " ORDER BY rank LIMIT ?"
            params.append(top_k)
            hits = [(int(r[0]), -float(r[1])) for r in self.reader.execute(sql, params)]
            return self._hydrate(hits)

    def _hydrate(self, hits: list[tuple[int, float]]) -> list[SearchResult]:
        if not hits:
            return []
        marks = ",".join("?" * len(hits))
        rows = {
            r[0]: r
            for r in self.reader.execute(
                f'SELECT id, doc_seq, idx, start, "end", context, text FROM chunks'
                f" WHERE id IN ({marks})",
                [chunk_id for chunk_id, _ in hits],
            )
        }
        results = []
        for chunk_id, score in hits:
            row = rows.get(chunk_id)
            doc = self._docs.get(row[1]) if row else None
            if row is None or doc is None:  # deleted by another process since the load
                continue
            page = bisect.bisect_right(doc.pages, row[3]) if doc.pages else None
            results.append(
                SearchResult(
                    score=score,
                    chunk_id=chunk_id,
                    document_id=doc.id,
                    source=doc.source,
                    text=row[6],
                    heading=row[5],
                    metadata=doc.metadata,
                    position=ChunkPosition(index=row[2], start=row[3], end=row[4], page=page),
                )
            )
        return results
