"""The workspace file: its schema, connections and write transactions (SQLite, WAL)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from terminus.errors import InvalidParameterError
from terminus.rag.store import StoreConfig

SCHEMA_VERSION = 1
FILENAME = "workspace.sqlite3"
BUSY_TIMEOUT_MS = 60_000

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


#: Large document texts, apart from their row: a value in the middle of a row is built
#: whole in memory (twice) when written, while the last column of a row can be written
#: in slices through SQLite's blob I/O. ``documents.text`` is then ''.
LARGE_TEXTS = """CREATE TABLE IF NOT EXISTS document_texts (
    doc_seq INTEGER PRIMARY KEY,
    characters INTEGER NOT NULL,
    text BLOB NOT NULL
)"""


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


def connect(path: Path) -> sqlite3.Connection:
    """An autocommit connection (transactions are explicit) that waits for other writers."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    return db


def read_meta(db: sqlite3.Connection) -> dict[str, str]:
    return dict(db.execute("SELECT key, value FROM meta").fetchall())


def read_config(db: sqlite3.Connection, path: Path) -> StoreConfig:
    meta = read_meta(db)
    version = int(meta.get("schema_version", "0"))
    if version != SCHEMA_VERSION:
        raise InvalidParameterError(
            f"{path} has workspace schema {version}; this Terminus reads {SCHEMA_VERSION}"
        )
    return StoreConfig(meta["model"], int(meta["dimensions"]))


def create(db: sqlite3.Connection, config: StoreConfig) -> None:
    """Create the schema and the binding; they appear together, or not at all."""
    values = {
        "schema_version": str(SCHEMA_VERSION),
        "model": config.model,
        "dimensions": str(config.dimensions),
        "created_at": repr(time.time()),
        "generation": "0",
    }
    db.execute("BEGIN IMMEDIATE")
    try:
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)
        db.execute(LARGE_TEXTS)
        db.executemany("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", values.items())
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


class WriteTransaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (or ``ROLLBACK`` on any exception) under a lock.

    Entering gives the ``generation`` the transaction started from; a commit bumps it, so
    every connection can tell its in-memory snapshot is stale.
    """

    def __init__(self, db: sqlite3.Connection, lock: threading.RLock) -> None:
        self.db = db
        self.lock = lock

    def __enter__(self) -> int:
        self.lock.acquire()
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.lock.release()
            raise
        row = self.db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return int(row[0]) if row else 0

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        try:
            if kind is None:
                try:
                    self.db.execute(
                        "UPDATE meta SET value = CAST(value AS INTEGER) + 1"
                        " WHERE key = 'generation'"
                    )
                    self.db.execute("COMMIT")
                except BaseException:
                    self.db.execute("ROLLBACK")
                    raise
            else:
                self.db.execute("ROLLBACK")
        finally:
            self.lock.release()
