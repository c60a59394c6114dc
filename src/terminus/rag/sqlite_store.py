"""The embedded store: one SQLite file (WAL) plus an in-memory float32 matrix.

SQLite holds everything durable — documents and their text, chunks, vectors as float32
blobs, an FTS5 index of the chunk text — and gives each document write a transaction, so
a process killed mid-ingest leaves the file as it was before that document. Vectors are
also kept in RAM as one matrix that a query scans exactly (``sqlite_index.py``).

Several processes may share a workspace: every write bumps a ``generation`` counter in the
same transaction, and a search that finds the counter moved under it reloads the matrix.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from terminus.errors import DimensionMismatchError
from terminus.rag import sqlite_db
from terminus.rag.matrix import VectorMatrix
from terminus.rag.sqlite_db import FILENAME, WriteTransaction, connect, read_config, read_meta
from terminus.rag.sqlite_index import SearchIndex
from terminus.rag.store import Batch, Filter, StoreConfig
from terminus.rag.types import DocumentInfo, DocumentRecord, SearchResult

#: Document texts this long (characters) are written in slices, as a UTF-8 blob.
LARGE_TEXT = 1_000_000
_TEXT_SLICE = 1 << 20


def _utf8_length(text: str) -> int:
    return sum(
        len(text[i : i + _TEXT_SLICE].encode("utf-8")) for i in range(0, len(text), _TEXT_SLICE)
    )


class SqliteStore:
    """A :class:`~terminus.rag.store.VectorStore` in ``<directory>/workspace.sqlite3``."""

    def __init__(
        self, directory: Path, create: StoreConfig | None = None, index: str = "auto"
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / FILENAME
        self._db = connect(self.path)  # writes (one transaction per document)
        self._write_lock = threading.RLock()
        if create is not None:
            with self._write_lock:
                sqlite_db.create(self._db, create)
        config = read_config(self._db, self.path)
        self._index = SearchIndex(connect(self.path), config, directory / "ann", index)

    @property
    def config(self) -> StoreConfig:
        return self._index.config

    @property
    def created_at(self) -> float:
        with self._index.lock:
            return float(read_meta(self._index.reader).get("created_at", "0"))

    @property
    def memory_bytes(self) -> int:
        """Bytes the in-memory matrix holds (vectors and ids)."""
        return self._index.memory_bytes

    def build_index(self) -> bool:
        """Build (or load) the approximate index now, where mode and size call for one."""
        return self._index.build_index()

    def close(self) -> None:
        with self._write_lock, self._index.lock:
            self._index.close_index()
            self._db.close()
            self._index.reader.close()

    def _transaction(self) -> WriteTransaction:
        return WriteTransaction(self._db, self._write_lock)

    # -- writes -----------------------------------------------------------------------

    def add_document(
        self, document: DocumentRecord, batches: Iterable[Batch], replace: Sequence[str] = ()
    ) -> int:
        ids: list[Any] = []
        vectors: list[Any] = []
        # Vectors are kept for the in-memory snapshot only when one is loaded: an ingest
        # into a workspace nobody searched yet holds one batch at a time.
        keep = self._index.loaded
        count = 0
        with self._transaction() as generation:
            duplicate = self._db.execute(
                "SELECT 1 FROM documents WHERE content_hash = ?", (document.content_hash,)
            ).fetchone()
            if duplicate:  # another process added this content since the caller checked
                return 0
            removed = [seq for doc_id in replace if (seq := self._delete(doc_id)) is not None]
            seq = self._insert_document(document)
            for batch_ids, batch_vectors in self._insert_chunks(seq, batches, self.config):
                count += len(batch_ids)
                if keep:
                    ids.append(batch_ids)
                    vectors.append(batch_vectors)
        if not keep:  # no vectors to patch it with: the next search loads it from the file
            self._index.reload_later()
            return count
        added = (
            seq,
            document,
            np.concatenate(ids) if ids else np.empty(0, dtype=np.int64),
            np.concatenate(vectors) if vectors else None,
        )
        self._index.committed(generation, removed, added)
        return count

    def _insert_document(self, document: DocumentRecord) -> int:
        large = len(document.text) >= LARGE_TEXT
        cursor = self._db.execute(
            "INSERT INTO documents (id, source, content_hash, kind, text, metadata, chunking,"
            " pages, added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                document.id,
                document.source,
                document.content_hash,
                document.kind,
                "" if large else document.text,
                json.dumps(document.metadata),
                json.dumps(document.chunking),
                json.dumps(list(document.pages)) if document.pages is not None else None,
                document.added_at or time.time(),
            ),
        )
        seq = cursor.lastrowid
        assert seq is not None
        if large:
            # Bound as one value, a text is copied whole (twice) inside SQLite: write its
            # UTF-8 a slice at a time into the last column of a row of its own instead.
            self._db.execute(sqlite_db.LARGE_TEXTS)
            self._db.execute(
                "INSERT INTO document_texts (doc_seq, characters, text) VALUES (?, ?, zeroblob(?))",
                (seq, len(document.text), _utf8_length(document.text)),
            )
            with self._db.blobopen("document_texts", "text", seq) as blob:
                for i in range(0, len(document.text), _TEXT_SLICE):
                    blob.write(document.text[i : i + _TEXT_SLICE].encode("utf-8"))
        return seq

    def _insert_chunks(
        self, seq: int, batches: Iterable[Batch], config: StoreConfig
    ) -> Iterator[tuple[Any, Any]]:
        row = self._db.execute("SELECT COALESCE(MAX(id), 0) FROM chunks").fetchone()
        next_id = int(row[0]) + 1
        checker = VectorMatrix(config.dimensions)
        for chunks, raw in batches:
            vectors = checker.check(raw)
            if len(vectors) != len(chunks):
                raise DimensionMismatchError(f"{len(chunks)} chunks but {len(vectors)} vectors")
            ids = np.arange(next_id, next_id + len(chunks), dtype=np.int64)
            next_id += len(chunks)
            self._db.executemany(
                'INSERT INTO chunks (id, doc_seq, idx, start, "end", context, text, vector)'
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    (int(i), seq, c.index, c.start, c.end, c.context, c.text, v.tobytes())
                    for i, c, v in zip(ids, chunks, vectors, strict=True)
                ),
            )
            self._db.executemany(
                "INSERT INTO chunk_fts (rowid, context, text) VALUES (?, ?, ?)",
                ((int(i), c.context, c.text) for i, c in zip(ids, chunks, strict=True)),
            )
            yield ids, vectors

    def _delete(self, document_id: str) -> int | None:
        row = self._db.execute("SELECT seq FROM documents WHERE id = ?", (document_id,)).fetchone()
        if row is None:
            return None
        seq = int(row[0])
        self._db.execute(
            "INSERT INTO chunk_fts (chunk_fts, rowid, context, text) "
            "SELECT 'delete', id, context, text FROM chunks WHERE doc_seq = ?",
            (seq,),
        )
        self._db.execute("DELETE FROM chunks WHERE doc_seq = ?", (seq,))
        if self._has_large_texts(self._db):
            self._db.execute("DELETE FROM document_texts WHERE doc_seq = ?", (seq,))
        self._db.execute("DELETE FROM documents WHERE seq = ?", (seq,))
        return seq

    def delete_document(self, document_id: str) -> bool:
        with self._transaction() as generation:
            seq = self._delete(document_id)
        self._index.committed(generation, [seq] if seq is not None else [])
        return seq is not None

    def rebuild(
        self, config: StoreConfig, items: Iterable[tuple[DocumentRecord, Iterable[Batch]]]
    ) -> None:
        with self._transaction():
            self._db.execute("INSERT INTO chunk_fts (chunk_fts) VALUES ('delete-all')")
            self._db.execute("DELETE FROM chunks")
            for document, batches in items:
                row = self._db.execute(
                    "SELECT seq FROM documents WHERE id = ?", (document.id,)
                ).fetchone()
                if row is None:
                    continue
                self._db.execute(
                    "UPDATE documents SET chunking = ? WHERE seq = ?",
                    (json.dumps(document.chunking), row[0]),
                )
                for _ in self._insert_chunks(int(row[0]), batches, config):
                    pass
            self._db.executemany(
                "UPDATE meta SET value = ? WHERE key = ?",
                ((config.model, "model"), (str(config.dimensions), "dimensions")),
            )
        self._index.invalidate(config)

    # -- reads --------------------------------------------------------------------------

    def find_by_hash(self, content_hash: str) -> str | None:
        with self._index.lock:
            row = self._index.reader.execute(
                "SELECT id FROM documents WHERE content_hash = ?", (content_hash,)
            ).fetchone()
        return str(row[0]) if row else None

    def find_by_source(self, source: str) -> list[str]:
        with self._index.lock:
            rows = self._index.reader.execute(
                "SELECT id FROM documents WHERE source = ? ORDER BY seq", (source,)
            ).fetchall()
        return [str(r[0]) for r in rows]

    def documents(self) -> list[DocumentInfo]:
        with self._index.lock:
            rows = self._index.reader.execute(
                "SELECT d.id, d.source, d.kind, " + self._characters_sql() + ", d.metadata,"
                " d.added_at,"
                " (SELECT COUNT(*) FROM chunks c WHERE c.doc_seq = d.seq)"
                " FROM documents d ORDER BY d.seq"
            ).fetchall()
        return [
            DocumentInfo(
                id=r[0],
                source=r[1],
                kind=r[2],
                characters=r[3],
                metadata=json.loads(r[4]),
                added_at=r[5],
                chunks=r[6],
            )
            for r in rows
        ]

    def document_records(self) -> Iterator[DocumentRecord]:
        with self._index.lock:
            seqs = [
                r[0] for r in self._index.reader.execute("SELECT seq FROM documents ORDER BY seq")
            ]
        for seq in seqs:
            with self._index.lock:
                row = self._index.reader.execute(
                    "SELECT id, source, content_hash, kind, text, metadata, chunking, pages,"
                    " added_at FROM documents WHERE seq = ?",
                    (seq,),
                ).fetchone()
            if row is not None:
                yield DocumentRecord(
                    id=row[0],
                    source=row[1],
                    content_hash=row[2],
                    kind=row[3],
                    text=self._large_text(seq) or row[4],
                    metadata=json.loads(row[5]),
                    chunking=json.loads(row[6]),
                    pages=tuple(json.loads(row[7])) if row[7] else None,
                    added_at=row[8],
                )

    def _characters_sql(self) -> str:
        if not self._has_large_texts(self._index.reader):
            return "length(d.text)"
        return (
            "COALESCE((SELECT t.characters FROM document_texts t WHERE t.doc_seq = d.seq),"
            " length(d.text))"
        )

    def _large_text(self, seq: int) -> str | None:
        with self._index.lock:
            if not self._has_large_texts(self._index.reader):
                return None
            row = self._index.reader.execute(
                "SELECT text FROM document_texts WHERE doc_seq = ?", (seq,)
            ).fetchone()
        return bytes(row[0]).decode("utf-8") if row else None

    @staticmethod
    def _has_large_texts(db: sqlite3.Connection) -> bool:
        """Whether the file has the table (workspaces made before it have not, until a
        large document is written)."""
        row = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'document_texts'"
        ).fetchone()
        return row is not None

    def counts(self) -> tuple[int, int]:
        with self._index.lock:
            docs = self._index.reader.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
            chunks = self._index.reader.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        return int(docs), int(chunks)

    def search(self, vector: Any, top_k: int, filter: Filter | None = None) -> list[SearchResult]:
        return self._index.search(vector, top_k, filter)

    def keyword_search(
        self, query: str, top_k: int, filter: Filter | None = None
    ) -> list[SearchResult]:
        return self._index.keyword_search(query, top_k, filter)
