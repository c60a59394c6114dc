"""Which embedded vector store for RAG workspaces? Search latency by size (not a test).

Synthetic unit vectors, top-10 by inner product, one query at a time as a workspace search
runs. ``--data clustered`` (default) draws them around 2,000 topic centres with a decaying
spectrum, as embeddings of real text are; ``--data random`` is uniform on the sphere, the
worst case for any approximate index. Sections:

- exact (numpy, what a workspace uses below 200k chunks): wall and CPU time per query,
  split into the matrix product and the top-k; ``--busy N`` repeats it next to N spinning
  neighbour processes, to show where the time goes under load;
- the approximate IVF index of ``terminus.rag.ann`` (faiss): build, save/load, p50/p95
  and recall@10 against exact, per number of probed cells;
- with ``--others``, the candidates compared when the store was chosen, each skipped when
  not installed (usearch HNSW, sqlite-vec, LanceDB).

    python bench/bench_rag_stores.py --chunks 200000 --busy 2
    python bench/bench_rag_stores.py --chunks 20000 --data random
    pip install usearch sqlite-vec apsw lancedb; python bench/bench_rag_stores.py --others

sqlite-vec is loaded through apsw because CPython's sqlite3 is often built without
loadable-extension support (this machine's is).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
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


def wall_and_cpu(fn: Callable[[np.ndarray], Any], queries: np.ndarray) -> dict[str, float]:
    """p50/p95 of wall time and of this process's CPU time per query (ms): when wall is
    far above CPU, the query waited for a core rather than computed."""
    fn(queries[0])
    wall, cpu = [], []
    for q in queries:
        w, c = time.perf_counter(), time.process_time()
        fn(q)
        wall.append((time.perf_counter() - w) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    return {
        "wall50": statistics.median(wall),
        "wall95": percentile(wall, 0.95),
        "cpu50": statistics.median(cpu),
        "cpu95": percentile(cpu, 0.95),
    }


def make_vectors(n: int, dim: int, kind: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "random":
        x = rng.standard_normal((n, dim), dtype=np.float32)
    else:
        spectrum = (np.arange(1, dim + 1) ** -0.8).astype(np.float32)
        topics = np.random.default_rng(0).standard_normal((2000, dim), dtype=np.float32)
        x = np.empty((n, dim), dtype=np.float32)
        for start in range(0, n, 65536):  # in slices: no n x dim float64 temporaries
            m = min(65536, n - start)
            noise = rng.standard_normal((m, dim), dtype=np.float32)
            x[start : start + m] = (topics[rng.integers(0, 2000, m)] + 0.5 * noise) * spectrum
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def _spin(stop: Any) -> None:
    while not stop.is_set():
        pass


def bench_exact_load(matrix: np.ndarray, queries: np.ndarray, k: int, busy: int) -> None:
    """Where an exact search's time goes: the product, the top-k, and waiting for a core."""

    def product(q: np.ndarray) -> Any:
        return matrix @ q

    scores = matrix @ queries[0]

    def top(q: np.ndarray) -> Any:
        part = np.argpartition(-scores, k)[:k]
        return part[np.argsort(-scores[part])]

    def whole(q: np.ndarray) -> Any:
        return exact_top(matrix, q, k)

    from terminus.rag.matrix import one_blas_thread

    def one_thread(q: np.ndarray) -> Any:  # what a workspace does below 100k rows
        with one_blas_thread():
            return exact_top(matrix, q, k)

    for label, neighbours in (("quiet", 0), (f"{busy} busy neighbours", busy)):
        if label != "quiet" and not busy:
            continue
        stop = multiprocessing.Event()
        procs = [multiprocessing.Process(target=_spin, args=(stop,)) for _ in range(neighbours)]
        for p in procs:
            p.start()
        try:
            time.sleep(0.5 if procs else 0)
            print(f"exact search, {label} (load average {os.getloadavg()[0]:.1f}):", flush=True)
            rounds = (
                ("product, BLAS default", product),
                ("top-k", top),
                ("whole, BLAS default", whole),
                ("whole, one thread", one_thread),
                ("whole, BLAS default", whole),  # again: alternating order
                ("whole, one thread", one_thread),
            )
            for name, fn in rounds:
                r = wall_and_cpu(fn, queries)
                print(
                    f"  {name:<22} wall p50 {r['wall50']:6.2f} p95 {r['wall95']:6.2f} ms"
                    f"   CPU p50 {r['cpu50']:6.2f} p95 {r['cpu95']:6.2f} ms",
                    flush=True,
                )
        finally:
            stop.set()
            for p in procs:
                p.join()


def bench_ivf(matrix: np.ndarray, queries: np.ndarray, k: int) -> None:
    """The workspace's approximate index (terminus.rag.ann): build, disk, speed, recall."""
    try:
        from terminus.rag.ann import IvfIndex, cells_for, probes_for
    except ImportError:
        print("terminus.rag.ann: not importable (run with PYTHONPATH=src)")
        return
    try:
        import faiss  # noqa: F401
    except ImportError:
        print("IVF index: faiss not installed (pip install 'terminus-sdk[ann]'), skipped")
        return
    n = len(matrix)
    cells = cells_for(n)
    print(f"IVF index: {cells} cells, building on {n:,} vectors ...", flush=True)
    started = time.perf_counter()
    index = IvfIndex.build(np.arange(n), matrix)
    build_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        path = index.save(Path(tmp), "bench", 0)
        save_s = time.perf_counter() - started
        size = path.stat().st_size
        started = time.perf_counter()
        loaded = IvfIndex.load(Path(tmp), "bench", 0, n, matrix.shape[1])
        load_s = time.perf_counter() - started
        assert loaded is not None and loaded.count == n
    print(
        f"  build {build_s:.1f} s, save {save_s:.1f} s, load {load_s:.1f} s,"
        f" file {size / 2**20:.0f} MiB (load average {os.getloadavg()[0]:.1f})",
        flush=True,
    )
    exact = [set(exact_top(matrix, q, k).tolist()) for q in queries]
    default = probes_for(cells)
    for probes in sorted({max(1, default // 4), max(1, default // 2), default, default * 2}):
        index.probes = min(probes, cells)
        r = wall_and_cpu(lambda q: index.search(q, k), queries)
        found = sum(
            len(e & {i for i, _ in index.search(q, k)}) for q, e in zip(queries, exact, strict=True)
        )
        mark = " (default)" if probes == default else ""
        print(
            f"  probes {index.probes:>4}{mark:<10} wall p50 {r['wall50']:6.2f} p95"
            f" {r['wall95']:6.2f} ms   CPU p95 {r['cpu95']:6.2f} ms"
            f"   recall@{k} {found / (k * len(queries)):.3f}",
            flush=True,
        )


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
    parser.add_argument("--chunks", "--n", dest="n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--data", choices=("clustered", "random"), default="clustered")
    parser.add_argument("--busy", type=int, default=0, help="spinning neighbours (a pass)")
    parser.add_argument("--no-ivf", action="store_true", help="skip the IVF index")
    parser.add_argument("--no-exact", action="store_true", help="skip the exact section")
    parser.add_argument("--others", action="store_true", help="usearch, sqlite-vec, LanceDB")
    parser.add_argument("-k", type=int, default=10)
    args = parser.parse_args()
    print(
        f"{args.n:,} {args.data} vectors x {args.dim} dims, {args.queries} queries,"
        f" top-{args.k}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    matrix = make_vectors(args.n, args.dim, args.data, seed=1)
    queries = make_vectors(args.queries, args.dim, args.data, seed=2)
    if not args.no_exact:
        bench_exact_load(matrix, queries, args.k, args.busy)
    if not args.no_ivf:
        bench_ivf(matrix, queries, args.k)
    if args.others:
        bench_numpy(matrix, queries, args.k)
        bench_sqlite_blobs(matrix)
        bench_usearch(matrix, queries, args.k)
        bench_sqlite_vec(matrix, queries, args.k)
        bench_lancedb(matrix, queries, args.k)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
