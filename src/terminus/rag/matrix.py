"""Exact nearest-neighbour search over an in-memory float32 matrix (brute force).

At 100k chunks x 384 dims a query is one matrix-vector product (~150 MB read) and an
``argpartition``: about 5 ms on two cores here, exact, with no index to build or keep
consistent with the database (see docs/rag.md for the measurements against HNSW,
sqlite-vec and LanceDB).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from terminus.errors import DimensionMismatchError

Array = np.ndarray[Any, Any]
_blas: Any = None  # threadpoolctl's controller, made on first search


#: Below this many rows the product runs on one BLAS thread (see one_blas_thread).
ONE_THREAD_ROWS = 100_000


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """numpy's BLAS on one thread for the block. A short matrix-vector product costs less
    than handing work to OpenBLAS's second thread, which waits for a core when the machine
    is busy: at 20k x 384 next to busy neighbours a product took 48 ms of wall time (8 ms
    of CPU) with two threads and 2.8 ms (2.6 ms) with one. At 200k the CPU time was the
    same either way and two threads won on wall time (bench/bench_rag_stores.py,
    docs/rag.md), so large matrices keep BLAS's default."""
    global _blas
    if _blas is None:
        from threadpoolctl import ThreadpoolController

        _blas = ThreadpoolController()
    with _blas.limit(limits=1, user_api="blas"):
        yield


class VectorMatrix:
    """Rows of unit vectors, each tagged with a chunk id and the document it belongs to."""

    def __init__(self, dimensions: int, capacity: int = 0) -> None:
        self.dimensions = dimensions
        self._n = 0
        self._vectors = np.empty((capacity, dimensions), dtype=np.float32)
        self._chunk_ids = np.empty(capacity, dtype=np.int64)
        self._doc_ids = np.empty(capacity, dtype=np.int64)

    def __len__(self) -> int:
        return self._n

    @property
    def nbytes(self) -> int:
        return int(self._vectors.nbytes + self._chunk_ids.nbytes + self._doc_ids.nbytes)

    def check(self, vectors: Array) -> Array:
        """``vectors`` as a C-contiguous float32 (n, d) array, or ``DimensionMismatchError``."""
        array = np.ascontiguousarray(vectors, dtype=np.float32)
        if array.ndim == 1:
            array = array.reshape(1, -1)
        if array.ndim != 2 or array.shape[1] != self.dimensions:
            got = array.shape[-1] if array.ndim else 0
            raise DimensionMismatchError(
                f"vector has {got} dimensions; this workspace stores {self.dimensions}"
            )
        return array

    def append(self, chunk_ids: Array, doc_ids: Array, vectors: Array) -> None:
        vectors = self.check(vectors)
        count = len(vectors)
        needed = self._n + count
        if needed > len(self._vectors):
            capacity = max(needed, int(len(self._vectors) * 1.25) + 1024)
            self._vectors = _grow(self._vectors, capacity, self._n)
            self._chunk_ids = _grow(self._chunk_ids, capacity, self._n)
            self._doc_ids = _grow(self._doc_ids, capacity, self._n)
        self._vectors[self._n : needed] = vectors
        self._chunk_ids[self._n : needed] = chunk_ids
        self._doc_ids[self._n : needed] = doc_ids
        self._n = needed

    def rows(self) -> tuple[Array, Array]:
        """``(chunk ids, vectors)`` of every row. Rows are never changed in place (a
        removal makes new arrays), so these stay valid for a reader such as an index
        build while the matrix moves on."""
        return self._chunk_ids[: self._n], self._vectors[: self._n]

    def chunk_ids_of(self, doc_ids: Array) -> Array:
        return self._chunk_ids[: self._n][np.isin(self._doc_ids[: self._n], doc_ids)]

    def remove_documents(self, doc_ids: Array) -> None:
        keep = ~np.isin(self._doc_ids[: self._n], doc_ids)
        kept = int(keep.sum())
        if kept == self._n:
            return
        self._vectors = self._vectors[: self._n][keep]
        self._chunk_ids = self._chunk_ids[: self._n][keep]
        self._doc_ids = self._doc_ids[: self._n][keep]
        self._n = kept

    def top_k(
        self, query: Array, k: int, allowed_docs: Array | None = None
    ) -> list[tuple[int, float]]:
        """``(chunk id, score)`` of the ``k`` rows with the largest inner product."""
        q = self.check(query)[0]
        if self._n == 0 or k <= 0:
            return []
        if self._n < ONE_THREAD_ROWS:
            with one_blas_thread():
                scores = self._vectors[: self._n] @ q
        else:
            scores = self._vectors[: self._n] @ q
        if allowed_docs is not None:
            mask = np.isin(self._doc_ids[: self._n], allowed_docs)
            candidates = int(mask.sum())
            if candidates == 0:
                return []
            scores[~mask] = -np.inf
            k = min(k, candidates)
        k = min(k, self._n)
        top = np.argpartition(-scores, k - 1)[:k] if k < self._n else np.arange(self._n)
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(self._chunk_ids[i]), float(scores[i])) for i in top]


def _grow(array: Array, capacity: int, used: int) -> Array:
    grown = np.empty((capacity, *array.shape[1:]), dtype=array.dtype)
    grown[:used] = array[:used]
    return grown
