"""The embedded store: one SQLite file (WAL) plus an in-memory float32 matrix.

SQLite holds everything durable — documents and their text, chunks, vectors as float32
blobs, an FTS5 index of the chunk text — and gives each document write a transaction, so
a process killed mid-ingest leaves the file as it was before that document. Vectors are
also kept in RAM as one matrix that a query scans exactly (see ``matrix.py``).

Several processes may share a workspace: every write bumps a ``generation`` counter in the
same transaction, and a search that finds the counter moved under it reloads the matrix.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from terminus.errors import DimensionMismatchError, InvalidParameterError
from terminus.rag.keywords import fts_query
from terminus.rag.matrix import VectorMatrix
from terminus.rag.store import Batch, Filter, StoreConfig, metadata_matches
from terminus.rag.types import ChunkPosition, DocumentInfo, DocumentRecord, SearchResult

SCHEMA_VERSION = 1
FILENAME = "workspace.sqlite3"
BUSY_TIMEOUT_MS = 60_000
_LOAD_PAGE = 8192

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    content_hash TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    text TEXT NOT NULL,
    metadata TEXT NOT NULL,
    chunking TEXT NOT NULL,
    pages TEXT,
    added_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_source ON documents (source);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    doc_seq INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    context TEXT NOT NULL,
    text TEXT NOT NULL,
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks (doc_seq);
CREATE VIRTUAL TABLE IF NOT EXISTS chunk_fts USING fts5 (
    context, text, content='chunks', content_rowid='id', tokenize='porter unicode61'
);
"""


@dataclass(frozen=True)
class _Doc:
    id: str
    source: str
    metadata: dict[str, Any]
    pages: tuple[int, ...] | None


def is_workspace(directory: Path) -> bool:
    """Whether ``directory`` holds a created workspace (a file whose creation committed)."""
    path = directory / FILENAME
    if not path.is_file():
        return False
    try:
        db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            row = db.execute("SELECT value FROM meta WHERE key = 'model'").fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return False
    return row is not None


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    return db


class SqliteStore:
    """A :class:`~terminus.rag.store.VectorStore` in ``<directory>/workspace.sqlite3``."""

    def __init__(self, directory: Path, create: StoreConfig | None = None) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / FILENAME
        self._db = _connect(self.path)  # writes (one transaction per document)
        self._reader = _connect(self.path)  # searches: never sees an open write
        self._write_lock = threading.RLock()
        self._read_lock = threading.RLock()
        if create is not None:
            self._create(create)
        self._config = self._read_config()
        self._matrix = VectorMatrix(self._config.dimensions)
        self._docs: dict[int, _Doc] = {}
        self._generation = -1  # nothing loaded yet

    def _create(self, config: StoreConfig) -> None:
        values = {
            "schema_version": str(SCHEMA_VERSION),
            "model": config.model,
            "dimensions": str(config.dimensions),
            "created_at": repr(time.time()),
            "generation": "0",
        }
        with self._write_lock:
            self._db.execute("BEGIN IMMEDIATE")  # schema and meta appear together, or not at all
            try:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.executemany(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", values.items()
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _read_config(self) -> StoreConfig:
        meta = self._meta(self._db)
        version = int(meta.get("schema_version", "0"))
        if version != SCHEMA_VERSION:
            raise InvalidParameterError(
                f"{self.path} has workspace schema {version}; this Terminus reads {SCHEMA_VERSION}"
            )
        return StoreConfig(meta["model"], int(meta["dimensions"]))

    @staticmethod
    def _meta(db: sqlite3.Connection) -> dict[str, str]:
        return dict(db.execute("SELECT key, value FROM meta").fetchall())

    @property
    def config(self) -> StoreConfig:
        return self._config

    @property
    def created_at(self) -> float:
        return float(self._meta(self._reader).get("created_at", "0"))

    def close(self) -> None:
        with self._write_lock, self._read_lock:
            self._db.close()
            self._reader.close()

    # -- transactions -----------------------------------------------------------------

    class _Tx:
        def __init__(self, store: SqliteStore) -> None:
            self.store = store

        def __enter__(self) -> int:
            self.store._write_lock.acquire()
            try:
                self.store._db.execute("BEGIN IMMEDIATE")
            except BaseException:
                self.store._write_lock.release()
                raise
            row = self.store._db.execute(
                "SELECT value FROM meta WHERE key = 'generation'"
            ).fetchone()
            return int(row[0]) if row else 0

        def __exit__(self, kind: object, exc: object, tb: object) -> None:
            db = self.store._db
            try:
                if kind is None:
                    try:
                        db.execute(
                            "UPDATE meta SET value = CAST(value AS INTEGER) + 1"
                            " WHERE key = 'generation'"
                        )
                        db.execute("COMMIT")
                    except BaseException:
                        db.execute("ROLLBACK")
                        raise
                else:
                    db.execute("ROLLBACK")
            finally:
                self.store._write_lock.release()

    def _transaction(self) -> SqliteStore._Tx:
        return SqliteStore._Tx(self)

    # -- documents ----------------------------------------------------------------------

    def find_by_hash(self, content_hash: str) -> str | None:
        with self._read_lock:
            row = self._reader.execute(
                "SELECT id FROM documents WHERE content_hash = ?", (content_hash,)
            ).fetchone()
        return str(row[0]) if row else None

    def find_by_source(self, source: str) -> list[str]:
        with self._read_lock:
            rows = self._reader.execute(
                "SELECT id FROM documents WHERE source = ? ORDER BY seq", (source,)
            ).fetchall()
        return [str(r[0]) for r in rows]

    def add_document(
        self, document: DocumentRecord, batches: Iterable[Batch], replace: Sequence[str] = ()
    ) -> int:
        added_ids: list[Any] = []
        added_vectors: list[Any] = []
        with self._transaction() as generation:
            duplicate = self._db.execute(
                "SELECT 1 FROM documents WHERE content_hash = ?", (document.content_hash,)
            ).fetchone()
            if duplicate:  # another process added this content since the caller checked
                return 0
            removed = [seq for doc_id in replace if (seq := self._delete(doc_id)) is not None]
            seq = self._insert_document(document)
            for ids, vectors in self._insert_chunks(seq, batches, self._config.dimensions):
                added_ids.append(ids)
                added_vectors.append(vectors)
        count = sum(len(ids) for ids in added_ids)
        with self._read_lock:
            if self._generation == generation:  # nobody else wrote since our snapshot
                if removed:
                    self._matrix.remove_documents(np.array(removed, dtype=np.int64))
                    for old in removed:
                        self._docs.pop(old, None)
                self._docs[seq] = _Doc(
                    document.id, document.source, document.metadata, document.pages
                )
                if count:
                    self._matrix.append(
                        np.concatenate(added_ids),
                        np.full(count, seq, dtype=np.int64),
                        np.concatenate(added_vectors),
                    )
                self._generation = generation + 1
        return count

    def _insert_document(self, document: DocumentRecord) -> int:
        cursor = self._db.execute(
            "INSERT INTO documents (id, source, content_hash, kind, text, metadata, chunking,"
            " pages, added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                document.id,
                document.source,
                document.content_hash,
                document.kind,
                document.text,
                json.dumps(document.metadata),
                json.dumps(document.chunking),
                json.dumps(list(document.pages)) if document.pages is not None else None,
                document.added_at or time.time(),
            ),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def _insert_chunks(
        self, seq: int, batches: Iterable[Batch], dimensions: int
    ) -> Iterator[tuple[Any, Any]]:
        row = self._db.execute("SELECT COALESCE(MAX(id), 0) FROM chunks").fetchone()
        next_id = int(row[0]) + 1
        checker = VectorMatrix(dimensions)
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
        self._db.execute("DELETE FROM documents WHERE seq = ?", (seq,))
        return seq

    def delete_document(self, document_id: str) -> bool:
        with self._transaction() as generation:
            seq = self._delete(document_id)
        with self._read_lock:
            if seq is not None and self._generation == generation:
                self._matrix.remove_documents(np.array([seq], dtype=np.int64))
                self._docs.pop(seq, None)
                self._generation = generation + 1
        return seq is not None

    def documents(self) -> list[DocumentInfo]:
        with self._read_lock:
            rows = self._reader.execute(
                "SELECT d.id, d.source, d.kind, length(d.text), d.metadata, d.added_at,"
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
        with self._read_lock:
            seqs = [r[0] for r in self._reader.execute("SELECT seq FROM documents ORDER BY seq")]
        for seq in seqs:
            with self._read_lock:
                row = self._reader.execute(
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
                    text=row[4],
                    metadata=json.loads(row[5]),
                    chunking=json.loads(row[6]),
                    pages=tuple(json.loads(row[7])) if row[7] else None,
                    added_at=row[8],
                )

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
                for _ in self._insert_chunks(int(row[0]), batches, config.dimensions):
                    pass
            self._db.executemany(
                "UPDATE meta SET value = ? WHERE key = ?",
                ((config.model, "model"), (str(config.dimensions), "dimensions")),
            )
        with self._read_lock:
            self._config = config
            self._matrix = VectorMatrix(config.dimensions)
            self._generation = -1  # reload on the next search

    def counts(self) -> tuple[int, int]:
        with self._read_lock:
            docs = self._reader.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
            chunks = self._reader.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        return int(docs), int(chunks)

    # -- search -------------------------------------------------------------------------

    def _refresh(self) -> None:
        """Reload the matrix if any connection committed a write since it was loaded."""
        row = self._reader.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        if row is not None and int(row[0]) == self._generation:
            return
        self._reader.execute("BEGIN")  # one snapshot for the whole load
        try:
            meta = self._meta(self._reader)
            config = StoreConfig(meta["model"], int(meta["dimensions"]))
            docs = {
                r[0]: _Doc(r[1], r[2], json.loads(r[3]), tuple(json.loads(r[4])) if r[4] else None)
                for r in self._reader.execute(
                    "SELECT seq, id, source, metadata, pages FROM documents"
                )
            }
            total = self._reader.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
            matrix = VectorMatrix(config.dimensions, capacity=int(total))
            cursor = self._reader.execute("SELECT id, doc_seq, vector FROM chunks ORDER BY id")
            while rows := cursor.fetchmany(_LOAD_PAGE):
                vectors = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32)
                matrix.append(
                    np.fromiter((r[0] for r in rows), np.int64, len(rows)),
                    np.fromiter((r[1] for r in rows), np.int64, len(rows)),
                    vectors.reshape(len(rows), config.dimensions),
                )
        finally:
            self._reader.execute("COMMIT")
        self._config, self._docs, self._matrix = config, docs, matrix
        self._generation = int(meta["generation"])

    def _allowed(self, filter: Filter | None) -> Any:
        if not filter:
            return None
        return np.array(
            [seq for seq, doc in self._docs.items() if metadata_matches(doc.metadata, filter)],
            dtype=np.int64,
        )

    def search(self, vector: Any, top_k: int, filter: Filter | None = None) -> list[SearchResult]:
        with self._read_lock:
            self._refresh()
            hits = self._matrix.top_k(vector, top_k, self._allowed(filter))
            return self._hydrate(hits)

    def keyword_search(
        self, query: str, top_k: int, filter: Filter | None = None
    ) -> list[SearchResult]:
        match = fts_query(query)
        if match is None or top_k <= 0:
            return []
        with self._read_lock:
            self._refresh()
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
            hits = [(int(r[0]), -float(r[1])) for r in self._reader.execute(sql, params)]
            return self._hydrate(hits)

    def _hydrate(self, hits: list[tuple[int, float]]) -> list[SearchResult]:
        if not hits:
            return []
        marks = ",".join("?" * len(hits))
        rows = {
            r[0]: r
            for r in self._reader.execute(
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
            results.append(
                SearchResult(
                    score=score,
                    chunk_id=chunk_id,
                    document_id=doc.id,
                    source=doc.source,
                    text=row[6],
                    heading=row[5],
                    metadata=doc.metadata,
                    position=ChunkPosition(
                        index=row[2], start=row[3], end=row[4], page=_page(doc.pages, row[3])
                    ),
                )
            )
        return results

    @property
    def memory_bytes(self) -> int:
        """Bytes the in-memory matrix holds (vectors and ids)."""
        return self._matrix.nbytes


def _page(pages: tuple[int, ...] | None, offset: int) -> int | None:
    if not pages:
        return None
    import bisect

    return bisect.bisect_right(pages, offset)
