"""Stored Responses (``store: true``): SQLite under the Terminus home, bounded, expiring.

Each row is one finished response: the response object as the API returned it and
the context the model saw (inherited items, then this request's input, without the
instructions), so ``previous_response_id`` works after a server restart. A row is
written in one transaction once the response is complete: a half-made response is
never stored. Rows expire after ``ttl_s``; beyond ``max_rows`` or ``max_bytes`` the
oldest go first.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_TTL_S = 30 * 24 * 3600.0
DEFAULT_MAX_ROWS = 10_000
DEFAULT_MAX_BYTES = 256 * 1024 * 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    size INTEGER NOT NULL,
    response TEXT NOT NULL,
    context TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS responses_created ON responses (created_at);
"""


@dataclass(frozen=True)
class StoredResponse:
    response: dict[str, Any]
    context: list[dict[str, Any]]


class ResponseStore:
    """Thread-safe (one connection behind a lock); callers run it off the event loop."""

    def __init__(
        self,
        path: Path,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        max_rows: int = DEFAULT_MAX_ROWS,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.path = path
        self.ttl_s = ttl_s
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=5000")
            db.executescript(_SCHEMA)
            self._db = db
        return self._db

    def put(self, response: dict[str, Any], context: list[dict[str, Any]]) -> None:
        body = json.dumps(response, separators=(",", ":"))
        items = json.dumps(context, separators=(",", ":"))
        size = len(body) + len(items)
        now = time.time()
        with self._lock:
            db = self._connect()
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute(
                    "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?)",
                    (response["id"], now, now + self.ttl_s, size, body, items),
                )
                self._prune(db, now)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def get(self, response_id: str) -> StoredResponse | None:
        with self._lock:
            row = (
                self._connect()
                .execute(
                    "SELECT response, context FROM responses WHERE id = ? AND expires_at > ?",
                    (response_id, time.time()),
                )
                .fetchone()
            )
        if row is None:
            return None
        return StoredResponse(response=json.loads(row[0]), context=json.loads(row[1]))

    def delete(self, response_id: str) -> bool:
        with self._lock:
            cursor = self._connect().execute(
                "DELETE FROM responses WHERE id = ? AND expires_at > ?", (response_id, time.time())
            )
        return cursor.rowcount > 0

    def count(self) -> int:
        with self._lock:
            (rows,) = self._connect().execute("SELECT COUNT(*) FROM responses").fetchone()
        return int(rows)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _prune(self, db: sqlite3.Connection, now: float) -> None:
        db.execute("DELETE FROM responses WHERE expires_at <= ?", (now,))
        rows, size = db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM responses").fetchone()
        if rows <= self.max_rows and size <= self.max_bytes:
            return
        excess_rows = max(0, rows - self.max_rows)
        excess_bytes = max(0, size - self.max_bytes)
        doomed: list[str] = []
        freed = 0
        for response_id, row_size in db.execute(
            "SELECT id, size FROM responses ORDER BY created_at, id"
        ):
            if len(doomed) >= excess_rows and freed >= excess_bytes:
                break
            doomed.append(response_id)
            freed += row_size
        db.executemany("DELETE FROM responses WHERE id = ?", [(d,) for d in doomed])
