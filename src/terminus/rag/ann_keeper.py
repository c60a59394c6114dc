"""Keeps a workspace's approximate index in step with its in-memory snapshot.

When a snapshot of enough chunks is loaded (:func:`terminus.rag.ann.wanted`), the index
saved for exactly that snapshot is loaded, or one is built — in a background thread, while
searches stay exact, so a search never waits minutes for it. This process's own writes
patch the index as they patch the matrix (a build under way queues them); a snapshot
reloaded because another process wrote starts over. An index that was patched is saved
again on close, under the snapshot it then matches.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from terminus.rag.ann import IvfIndex, wanted


@dataclass
class _Snapshot:
    key: str
    generation: int
    epoch: int
    pending: list[tuple[Any, Any, Any]] = field(default_factory=list)  # removed, ids, vectors


class AnnKeeper:
    """The index of one workspace, if it has one; every method runs under ``lock``."""

    def __init__(self, directory: Path, mode: str, lock: threading.RLock) -> None:
        self.directory = directory
        self.mode = mode
        self._lock = lock
        self._index: IvfIndex | None = None
        self._snapshot: _Snapshot | None = None
        self._epoch = 0
        self._dirty = False
        self._builder: threading.Thread | None = None
        self._closed = False

    @property
    def dirty(self) -> bool:
        """Whether the index was patched since it was saved."""
        return self._dirty

    @property
    def ready(self) -> IvfIndex | None:
        return self._index

    def snapshot_loaded(
        self, key: str, generation: int, ids: Any, vectors: Any, background: bool = True
    ) -> None:
        """A new snapshot is in memory: drop the old index, load or build this one's."""
        self._epoch += 1
        self._index, self._dirty = None, False
        self._snapshot = _Snapshot(key, generation, self._epoch)
        if not wanted(self.mode, len(ids)):
            self._snapshot = None
            return
        dims = int(vectors.shape[1])
        saved = IvfIndex.load(self.directory, key, generation, len(ids), dims)
        if saved is not None:
            self._index = saved
            return
        if background:
            self._builder = threading.Thread(
                target=self._build, args=(self._snapshot, ids, vectors), daemon=True
            )
            self._builder.start()
        else:
            self._build(self._snapshot, ids, vectors)

    def _build(self, snapshot: _Snapshot, ids: Any, vectors: Any) -> None:
        index = IvfIndex.build(ids, vectors)  # the rows are never changed in place
        with self._lock:
            if self._closed or self._snapshot is not snapshot or snapshot.epoch != self._epoch:
                return  # reloaded or closed meanwhile
            for removed, added_ids, added_vectors in snapshot.pending:
                _patch(index, removed, added_ids, added_vectors)
            self._index = index
            if snapshot.pending:
                self._dirty = True
            else:
                index.save(self.directory, snapshot.key, snapshot.generation)

    def patched(self, generation: int, removed: Any, added_ids: Any, added_vectors: Any) -> None:
        """This process committed a write; the snapshot is now at ``generation``."""
        if self._snapshot is None:
            return
        self._snapshot.generation = generation
        if self._index is None:
            self._snapshot.pending.append((removed, added_ids, added_vectors))
            return
        _patch(self._index, removed, added_ids, added_vectors)
        self._dirty = True

    def drop(self) -> None:
        """Forget the index (the snapshot is gone); a build under way is discarded."""
        self._epoch += 1
        self._index, self._snapshot, self._dirty = None, None, False

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a background build; whether an index is ready."""
        builder = self._builder
        if builder is not None:
            builder.join(timeout)
        return self._index is not None

    def close(self, generation: int) -> None:
        """Save a patched index if it still matches the file's ``generation``."""
        self._closed = True
        snapshot, index = self._snapshot, self._index
        matches = snapshot is not None and snapshot.generation == generation
        if self._dirty and index is not None and snapshot is not None and matches:
            index.save(self.directory, snapshot.key, generation)
        self._dirty = False


def _patch(index: IvfIndex, removed: Any, added_ids: Any, added_vectors: Any) -> None:
    if removed is not None and len(removed):
        index.remove(removed)
    if added_vectors is not None and len(added_ids):
        index.add(added_ids, added_vectors)
