"""An approximate nearest-neighbour index for large workspaces: faiss IVF-Flat, saved beside
the workspace file.

Exact search reads every vector for every query: linear, ~5 ms at 100k chunks and ~10× that
at 1M on two cores. An inverted-file index (IVF) cuts the vectors into ``cells`` by k-means
once; a query compares itself with the cells' centroids and scans only the ``probes``
nearest cells — a few percent of the vectors — with exact inner products there. Building
is a k-means on a sample plus one assignment pass (minutes at 1M on one core, against the
hours an HNSW graph took here), and the index holds the full float32 vectors, so the scores
it returns are the exact ones.

It needs the optional ``faiss-cpu`` package (``pip install 'terminus-sdk[ann]'``); without
it every search stays exact. A saved index is named by the workspace snapshot it holds
(``ivf-<key>-g<generation>-n<count>.faiss``) and written to a temporary name first, then
renamed: a file under its final name is always whole, and one for another snapshot is
never loaded.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

#: ``auto`` uses the index from this many chunks on (and when faiss is installed).
ANN_MIN_CHUNKS = 200_000
MODES = ("auto", "exact", "ann")
TRAIN_PER_CELL = 40  # k-means sample size per cell (faiss warns under 39)
_NAME = re.compile(r"^ivf-(?P<key>[0-9a-f]+)-g(?P<generation>\d+)-n(?P<count>\d+)\.faiss$")


def available() -> bool:
    """Whether faiss is installed."""
    return importlib.util.find_spec("faiss") is not None


def wanted(mode: str, chunks: int) -> bool:
    """Whether a workspace of ``chunks`` searches through an index in ``mode``."""
    if mode == "exact" or chunks == 0:
        return False
    if mode == "ann":
        return True
    return chunks >= ANN_MIN_CHUNKS and available()


def cells_for(count: int) -> int:
    """About 4·√n cells (the usual IVF rule), never fewer training rows than a cell needs."""
    return max(1, min(int(4 * math.sqrt(count)), count // TRAIN_PER_CELL))


def probes_for(cells: int) -> int:
    """Cells a query scans: 2 % of them, at least 32 (recall@10 ≥ 0.95 on clustered,
    embedding-like vectors from 20k to 200k; see docs/rag.md)."""
    return min(cells, max(32, cells // 50))


def snapshot_key(model: str, dimensions: int, created_at: str) -> str:
    """Names the workspace an index belongs to (a deleted and re-created one differs)."""
    return hashlib.sha256(f"{created_at}|{model}|{dimensions}".encode()).hexdigest()[:12]


class IvfIndex:
    """Chunk ids and their vectors in a faiss ``IndexIVFFlat`` (inner product)."""

    def __init__(self, index: Any) -> None:
        self._index = index

    @property
    def count(self) -> int:
        return int(self._index.ntotal)

    @property
    def dimensions(self) -> int:
        return int(self._index.d)

    @property
    def probes(self) -> int:
        return int(self._index.nprobe)

    @probes.setter
    def probes(self, value: int) -> None:
        self._index.nprobe = max(1, int(value))

    @classmethod
    def build(cls, ids: Any, vectors: Any, cells: int | None = None) -> IvfIndex:
        """Train the cells on a sample of ``vectors``, then add them all under ``ids``."""
        import faiss

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        count, dimensions = vectors.shape
        cells = cells or cells_for(count)
        index = faiss.IndexIVFFlat(
            faiss.IndexFlatIP(dimensions), dimensions, cells, faiss.METRIC_INNER_PRODUCT
        )
        sample = min(count, cells * TRAIN_PER_CELL)
        rows = np.sort(np.random.default_rng(0).choice(count, sample, replace=False))
        index.train(vectors[rows])
        index.add_with_ids(vectors, np.ascontiguousarray(ids, dtype=np.int64))
        index.nprobe = probes_for(cells)
        return cls(index)

    def search(self, query: Any, k: int) -> list[tuple[int, float]]:
        """``(chunk id, inner product)`` of up to ``k`` nearest vectors, best first."""
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        scores, ids = self._index.search(q, k)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def add(self, ids: Any, vectors: Any) -> None:
        self._index.add_with_ids(
            np.ascontiguousarray(vectors, dtype=np.float32),
            np.ascontiguousarray(ids, dtype=np.int64),
        )

    def remove(self, ids: Any) -> None:
        import faiss

        self._index.remove_ids(faiss.IDSelectorBatch(np.ascontiguousarray(ids, dtype=np.int64)))

    # -- on disk ---------------------------------------------------------------------------

    def save(self, directory: Path, key: str, generation: int) -> Path:
        """Write atomically as the index of snapshot (``key``, ``generation``); older
        files of this workspace are removed after."""
        import faiss

        directory.mkdir(parents=True, exist_ok=True)
        final = directory / f"ivf-{key}-g{generation}-n{self.count}.faiss"
        partial = directory / f".{final.name}.{os.getpid()}.partial"
        try:
            faiss.write_index(self._index, str(partial))
            with open(partial, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(partial, final)
        finally:
            partial.unlink(missing_ok=True)
        for other in directory.glob("ivf-*.faiss"):
            if other != final:
                other.unlink(missing_ok=True)
        return final

    @classmethod
    def load(
        cls, directory: Path, key: str, generation: int, count: int, dimensions: int
    ) -> IvfIndex | None:
        """The saved index of exactly this snapshot, or ``None`` (none, another snapshot's,
        or unreadable — then it is removed)."""
        path = directory / f"ivf-{key}-g{generation}-n{count}.faiss"
        if not path.is_file():
            return None
        import faiss

        try:
            index = cls(faiss.read_index(str(path)))
        except RuntimeError:
            path.unlink(missing_ok=True)
            return None
        if index.count != count or index.dimensions != dimensions:
            path.unlink(missing_ok=True)
            return None
        return index


def saved_files(directory: Path) -> list[Path]:
    """The index files of a workspace directory (whole ones: partial files are hidden)."""
    return sorted(p for p in directory.glob("ivf-*.faiss") if _NAME.match(p.name))
