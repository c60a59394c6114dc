"""Which embedded vector store for RAG workspaces? Search latency at 100k x 384 (not a test).

Synthetic random unit vectors (the worst case for approximate indexes), top-10 by inner
product, one query at a time as a workspace search runs. Each candidate is skipped when it
is not installed, so this runs in any environment that has numpy:

    python bench/bench_rag_stores.py                      # numpy brute force + SQLite blobs
    pip install usearch sqlite-vec apsw lancedb           # (in a scratch venv) the others
    python bench/bench_rag_stores.py --n 100000 --queries 200

sqlite-vec is loaded through apsw because CPython's sqlite3 is often built without
loadable-extension support (this machine's is).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def timed(fn: Callable[[np.ndarray], Any], queries: np.ndarray) -> tuple[float, float]:
    fn(queries[0])  # warm up
    samples = []
    for q in queries:
        started = time.perf_counter()
        fn(q)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), percentile(samples, 0.95)


def exact_top(matrix: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    scores = matrix @ q
    top = np.argpartition(-scores, k)[:k]
    return top[np.argsort(-scores[top])]


def report(name: str, p50: float, p95: float, note: str = "") -> None:
    print(f"{name:<38} p50 {p50:7.2f} ms   p95 {p95:7.2f} ms   {note}")


def bench_numpy(matrix: np.ndarray, queries: np.ndarray, k: int) -> None:
    p50, p95 = timed(lambda q: exact_top(matrix, q, k), queries)
    report("numpy brute force (float32)", p50, p95, "exact")
    mask = np.random.default_rng(1).random(len(matrix)) < 0.1

    def filtered(q: np.ndarray) -> np.ndarray:
        scores = matrix @ q
        scores[~mask] = -np.inf
        return np.argpartition(-scores, k)[:k]

    p50, p95 = timed(filtered, queries)
    report("numpy brute force + 10% filter mask", p50, p95, "exact")


def bench_sqlite_blobs(matrix: np.ndarray) -> None:
    """How long opening a workspace takes: reading every vector blob back into a matrix."""
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(os.path.join(tmp, "v.sqlite3"))
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE chunks (id INTEGER PRIMARY KEY, vector BLOB NOT NULL)")
        started = time.perf_counter()
        with db:
            db.executemany(
                "INSERT INTO chunks (id, vector) VALUES (?, ?)",
                ((i + 1, row.tobytes()) for i, row in enumerate(matrix)),
            )
        insert_s = time.perf_counter() - started
        started = time.perf_counter()
        rows = db.execute("SELECT vector FROM chunks ORDER BY id").fetchall()
        loaded = np.frombuffer(b"".join(r[0] for r in rows), dtype=np.float32)
        loaded = loaded.reshape(len(rows), matrix.shape[1])
        load_s = time.perf_counter() - started
        assert np.array_equal(loaded, matrix)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = os.path.getsize(os.path.join(tmp, "v.sqlite3"))
        db.close()
    print(
        f"{'SQLite blobs: insert / load all':<38} {insert_s:.2f} s / {load_s:.2f} s"
        f"   file {size / 2**20:.0f} MiB"
    )


def bench_usearch(matrix: np.ndarray, queries: np.ndarray, k: int) -> None:
    try:
        from usearch.index import Index, search
    except ImportError:
        print("usearch: not installed (skipped)")
        return
    p50, p95 = timed(lambda q: search(matrix, q, k, metric="ip", exact=True), queries)
    report("usearch exact (SIMD brute force)", p50, p95, "exact")
    index = Index(ndim=matrix.shape[1], metric="ip", dtype="f32")
    started = time.perf_counter()
    index.add(np.arange(len(matrix)), matrix)
    build_s = time.perf_counter() - started
    p50, p95 = timed(lambda q: index.search(q, k), queries)
    recall = np.mean(
        [
            len(set(index.search(q, k).keys.tolist()) & set(exact_top(matrix, q, k).tolist())) / k
            for q in queries[:50]
        ]
    )
    report("usearch HNSW (f32)", p50, p95, f"build {build_s:.1f} s, recall@{k} {recall:.2f}")


def bench_sqlite_vec(matrix: np.ndarray, queries: np.ndarray, k: int) -> None:
    try:
        import apsw
        import sqlite_vec
    except ImportError:
        print("sqlite-vec: not installed, or no apsw to load it (skipped)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        db = apsw.Connection(os.path.join(tmp, "vec.sqlite3"))
        db.enable_load_extension(True)
        db.load_extension(sqlite_vec.loadable_path())
        db.execute(f"CREATE VIRTUAL TABLE v USING vec0(embedding float[{matrix.shape[1]}])")
        started = time.perf_counter()
        with db:
            db.executemany(
                "INSERT INTO v (rowid, embedding) VALUES (?, ?)",
                ((i + 1, row.tobytes()) for i, row in enumerate(matrix)),
            )
        insert_s = time.perf_counter() - started
        sql = "SELECT rowid, distance FROM v WHERE embedding MATCH ? AND k = ?"
        p50, p95 = timed(lambda q: db.execute(sql, (q.tobytes(), k)).fetchall(), queries)
        report("sqlite-vec vec0 (brute force)", p50, p95, f"insert {insert_s:.1f} s, exact")
        db.close()


def bench_lancedb(matrix: np.ndarray, queries: np.ndarray, k: int) -> None:
    try:
        import lancedb
        import pyarrow as pa
    except ImportError:
        print("lancedb: not installed (skipped)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        db = lancedb.connect(tmp)
        dim = matrix.shape[1]
        vectors = pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), dim)
        table = pa.table({"id": pa.array(np.arange(len(matrix))), "vector": vectors})
        started = time.perf_counter()
        tbl = db.create_table("chunks", table)
        insert_s = time.perf_counter() - started

        def query(q: np.ndarray) -> Any:
            return tbl.search(q).metric("dot").limit(k).to_arrow()

        p50, p95 = timed(query, queries)
        report("LanceDB (no index: flat scan)", p50, p95, f"insert {insert_s:.1f} s, exact")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("-k", type=int, default=10)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    matrix = rng.standard_normal((args.n, args.dim), dtype=np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    queries = rng.standard_normal((args.queries, args.dim), dtype=np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    print(
        f"{args.n} vectors x {args.dim} dims, {args.queries} queries, top-{args.k}, {os.cpu_count()} CPUs"
    )
    bench_numpy(matrix, queries, args.k)
    bench_sqlite_blobs(matrix)
    bench_usearch(matrix, queries, args.k)
    bench_sqlite_vec(matrix, queries, args.k)
    bench_lancedb(matrix, queries, args.k)


if __name__ == "__main__":
    main()
