"""Nonces a provider has accepted, kept on disk so a restart cannot reopen replays.

A token is valid until its expiry (at most ``MAX_TTL_S`` ahead, plus clock skew); its
nonce must be refused for that long, whatever happens to the provider process. Each
accepted nonce is committed to a small SQLite table before the request runs, and rows
whose token has expired are pruned, so the table holds at most the nonces of the last
few minutes. A table that is still full after pruning refuses new requests (busy)
rather than forget a nonce that could still be replayed.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from terminus.errors import PeerBusyError
from terminus.p2p.tokens import CLOCK_SKEW_S

#: Live nonces kept at most: at the 300 s longest token life, over 300 requests a second.
MAX_NONCES = 100_000
#: Prune expired rows after this many claims (and whenever the table looks full).
PRUNE_EVERY = 256


class PersistentNonceStore:
    """A ``claim``-able nonce set in ``path`` (SQLite, WAL), shared by restarts of a provider."""

    def __init__(self, path: Path, *, max_nonces: int = MAX_NONCES) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_nonces = max_nonces
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit survives the process being killed (not a power cut).
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS nonces (nonce TEXT PRIMARY KEY, expires REAL NOT NULL)"
        )
        self._claims = 0
        self._live = 0
        self.prune()

    def claim(self, nonce: str, expires: float) -> bool:
        """True the first time ``nonce`` is seen (and records it), False for a replay."""
        with self._lock:
            self._claims += 1
            if self._claims % PRUNE_EVERY == 0 or self._live >= self.max_nonces:
                self._prune_locked()
            if self._live >= self.max_nonces:
                raise PeerBusyError(
                    "this provider is at its limit of live request tokens",
                    hint="retry in a minute",
                )
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO nonces (nonce, expires) VALUES (?, ?)", (nonce, expires)
            )
            if cursor.rowcount == 0:
                return False
            self._live += 1
            return True

    def prune(self) -> int:
        with self._lock:
            return self._prune_locked()

    def __len__(self) -> int:
        with self._lock:
            return self._count()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _prune_locked(self) -> int:
        cursor = self._db.execute(
            "DELETE FROM nonces WHERE expires < ?", (time.time() - CLOCK_SKEW_S,)
        )
        self._live = self._count()
        return cursor.rowcount

    def _count(self) -> int:
        row = self._db.execute("SELECT count(*) FROM nonces").fetchone()
        return int(row[0])
