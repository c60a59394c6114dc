"""RAG quality and speed on real data (not a test).

Quality: every PubMedQA (PQA-L) abstract becomes one document (its CONTEXTS joined as
paragraphs); each item's QUESTION is a query whose one relevant document is its own
abstract. Chunks are ranked, then deduplicated to a document ranking (first chunk of a
document counts); recall@1, recall@5 and MRR (over the top 20 documents) are reported
for vector-only and hybrid (vector + FTS5 BM25, reciprocal rank fusion) search.

Speed: ingest throughput against raw ``client.embed`` of the very same chunk texts in the
same batches (the ratio is what RAG adds on top of embedding), and search latency and
memory at 100k stored chunks (synthetic random unit vectors, 384 dims).

    python bench/bench_rag.py                      # all 1,000 items + 100k latency
    python bench/bench_rag.py --items 200 --skip-latency
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from terminus import Terminus
from terminus.rag import TextDocument, Workspace
from terminus.rag.chunking import make_chunker
from terminus.rag.ingest import ChunkingOptions, prepare_text

DATA = Path(os.environ.get("PUBMEDQA", "/work/shared/data/medbench/pubmedqa_pqal.json"))
MODEL = "all-minilm-l6-v2"
DEPTH = 20


def load_items(limit: int | None) -> list[tuple[str, str, str]]:
    """``(pmid, abstract, question)`` in file order."""
    data = json.loads(DATA.read_text())
    items = [(pmid, "\n\n".join(v["CONTEXTS"]), v["QUESTION"]) for pmid, v in data.items()]
    return items[:limit] if limit else items


def doc_ranking(results: list[Any]) -> list[str]:
    seen: dict[str, None] = {}
    for r in results:
        seen.setdefault(r.source, None)
    return list(seen)


def ranks(
    ws: Workspace, items: list[tuple[str, str, str]], vectors: Any, hybrid: bool
) -> list[int | None]:
    """The rank of each question's own abstract in the document ranking (None: not in 20)."""
    found: list[int | None] = []
    for (pmid, _, question), vector in zip(items, vectors, strict=True):
        results = ws.search(question, DEPTH * 3, hybrid=hybrid, query_vector=vector)
        ranking = doc_ranking(results)[:DEPTH]
        found.append(ranking.index(pmid) + 1 if pmid in ranking else None)
    return found


def metrics(found: list[int | None]) -> dict[str, float]:
    n = len(found)
    return {
        "recall@1": sum(1 for r in found if r == 1) / n,
        "recall@5": sum(1 for r in found if r is not None and r <= 5) / n,
        "mrr": sum(1 / r for r in found if r is not None) / n,
    }


def paired(a: list[int | None], b: list[int | None]) -> dict[str, int]:
    """Questions where ``b`` ranks the abstract better / worse than ``a``."""

    def rank(r: int | None) -> int:
        return r if r is not None else DEPTH + 1

    return {
        "better": sum(rank(y) < rank(x) for x, y in zip(a, b, strict=True)),
        "worse": sum(rank(y) > rank(x) for x, y in zip(a, b, strict=True)),
    }


class TimedClient:
    """The client, counting the seconds spent inside ``embed``."""

    def __init__(self, client: Terminus) -> None:
        self.client = client
        self.home = client.home
        self.catalog = client.catalog
        self.embed_s = 0.0

    def embed(self, texts: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return self.client.embed(texts, **kwargs)
        finally:
            self.embed_s += time.perf_counter() - started

    def completion(self, messages: Any, **kwargs: Any) -> Any:
        return self.client.completion(messages, **kwargs)


def evaluate(
    client: Terminus,
    items: list[tuple[str, str, str]],
    chunking: ChunkingOptions,
    batch: int,
    reps: int,
    threads: int | None,
    raw: bool = True,
) -> dict[str, Any]:
    documents = [
        TextDocument(text, source=pmid, metadata={"pmid": pmid}) for pmid, text, _ in items
    ]
    texts = [c.embed_text() for d in documents for c in prepare_text(d, chunking).chunks]
    client.load_model(MODEL, threads=threads)
    client.embed(texts[:batch], model=MODEL)  # warm up

    # Raw and ingest runs alternate and the best of each counts: other processes on the
    # machine slow either one at random, never both the same way.
    raw_runs, ingest_runs, shares = [], [], []
    for rep in range(reps):
        started = time.perf_counter()
        for i in range(0, len(texts), batch):
            if raw:
                client.embed(texts[i : i + batch], model=MODEL)
        raw_runs.append(time.perf_counter() - started)

        timed = TimedClient(client)
        ws = Workspace(timed, f"pubmedqa-{rep}", model=MODEL, batch_size=batch)
        timed.embed_s = 0.0
        started = time.perf_counter()
        ws.ingest(
            documents,
            chunking=chunking.strategy,
            chunk_size=chunking.size,
            overlap=chunking.overlap,
        )
        ingest_runs.append(time.perf_counter() - started)
        shares.append(timed.embed_s / ingest_runs[-1])
        info = ws.info()
        assert info.chunks == len(texts), (info.chunks, len(texts))
        if rep < reps - 1:
            ws.close()
    raw_s, ingest_s = min(raw_runs), min(ingest_runs)

    questions = [q for _, _, q in items]
    started = time.perf_counter()
    vectors = client.embed(questions, model=MODEL).vectors
    query_embed_s = time.perf_counter() - started
    vector_ranks = ranks(ws, items, vectors, hybrid=False)
    hybrid_ranks = ranks(ws, items, vectors, hybrid=True)
    ws.close()
    return {
        "items": len(items),
        "chunks": len(texts),
        "chunking": chunking.chunker("text").config(),
        "raw_embed_chunks_per_s": len(texts) / raw_s,
        "ingest_chunks_per_s": len(texts) / ingest_s,
        "ingest_vs_raw_ratio": raw_s / ingest_s,
        "embed_share_of_ingest": max(shares),
        "runs_s": {"raw": raw_runs, "ingest": ingest_runs},
        "query_embed_ms": 1000 * query_embed_s / len(questions),
        "vector": metrics(vector_ranks),
        "hybrid": metrics(hybrid_ranks),
        "hybrid_vs_vector": paired(vector_ranks, hybrid_ranks),
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def latency(n: int, dims: int, queries: int) -> dict[str, Any]:
    import psutil

    from terminus.rag.sqlite_store import SqliteStore
    from terminus.rag.store import StoreConfig
    from terminus.rag.types import Chunk, DocumentRecord

    rng = np.random.default_rng(0)
    per_doc = 100
    process = psutil.Process()
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "ws", create=StoreConfig("synthetic", dims))
        started = time.perf_counter()
        for d in range(n // per_doc):
            vectors = rng.standard_normal((per_doc, dims), dtype=np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            text = " ".join(f"word{d}_{i}" for i in range(per_doc))
            chunks = [Chunk(i, 0, 0, f"chunk {i} of document {d}") for i in range(per_doc)]
            record = DocumentRecord(
                id=f"{d:016x}", source=f"doc{d}", content_hash=f"{d:064x}", kind="text",
                text=text, metadata={"shard": str(d % 10)},
            )  # fmt: skip
            store.add_document(record, [(chunks, vectors)])
        write_s = time.perf_counter() - started
        store.close()

        rss_before = process.memory_info().rss
        store = SqliteStore(Path(tmp) / "ws")
        q = rng.standard_normal((queries, dims), dtype=np.float32)
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        started = time.perf_counter()
        store.search(q[0], 5)  # loads the matrix
        load_s = time.perf_counter() - started
        rss_after = process.memory_info().rss

        def timed(**kwargs: Any) -> tuple[float, float]:
            samples = []
            for v in q:
                t0 = time.perf_counter()
                store.search(v, 10, **kwargs)
                samples.append(1000 * (time.perf_counter() - t0))
            return statistics.median(samples), percentile(samples, 0.95)

        p50, p95 = timed()
        f50, f95 = timed(filter={"shard": "3"})
        memory = store.memory_bytes
        size = sum(f.stat().st_size for f in (Path(tmp) / "ws").iterdir())
        store.close()
    return {
        "chunks": n,
        "dimensions": dims,
        "write_s": write_s,
        "load_s": load_s,
        "search_p50_ms": p50,
        "search_p95_ms": p95,
        "filtered_p50_ms": f50,
        "filtered_p95_ms": f95,
        "matrix_mib": memory / 2**20,
        "rss_growth_mib": (rss_after - rss_before) / 2**20,
        "disk_mib": size / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="RAG quality (PubMedQA) and speed")
    parser.add_argument("--items", type=int, default=None, help="first N items (default all)")
    parser.add_argument("--chunking", default="auto")
    parser.add_argument("--chunk-size", type=int, default=None)
    parser.add_argument("--overlap", type=int, default=None)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--reps", type=int, default=2, help="raw/ingest runs (best counts)")
    parser.add_argument(
        "--threads", type=int, default=None, help="embedding threads [engine default]"
    )
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument(
        "--no-raw", action="store_true", help="skip the raw embed baseline (quality only)"
    )
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--chunks", type=int, default=100_000, help="chunks for the latency run")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    make_chunker(args.chunking, size=args.chunk_size, overlap=args.overlap)  # validate early

    report: dict[str, Any] = {}
    if not args.skip_quality:
        with tempfile.TemporaryDirectory() as home, Terminus(home=home) as client:
            options = ChunkingOptions(args.chunking, args.chunk_size, args.overlap)
            report["pubmedqa"] = evaluate(
                client,
                load_items(args.items),
                options,
                args.batch,
                args.reps,
                args.threads,
                not args.no_raw,
            )
    if not args.skip_latency:
        report["latency"] = latency(args.chunks, 384, 300)
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
        return
    if "pubmedqa" in report:
        r = report["pubmedqa"]
        print(f"PubMedQA: {r['items']} abstracts -> {r['chunks']} chunks {r['chunking']}")
        for mode in ("vector", "hybrid"):
            m = r[mode]
            print(
                f"  {mode:<7} recall@1 {m['recall@1']:.3f}  recall@5 {m['recall@5']:.3f}"
                f"  MRR {m['mrr']:.3f}"
            )
        h = r["hybrid_vs_vector"]
        print(f"  hybrid ranks the abstract better on {h['better']}, worse on {h['worse']}")
        if not args.no_raw:
            print(
                f"  ingest {r['ingest_chunks_per_s']:.1f} chunks/s vs raw embed"
                f" {r['raw_embed_chunks_per_s']:.1f} chunks/s:"
                f" ratio {r['ingest_vs_raw_ratio']:.3f}"
            )
        print(f"  time inside client.embed during ingest: {100 * r['embed_share_of_ingest']:.1f}%")
        print(f"  query embedding {r['query_embed_ms']:.1f} ms/question (batched)")
    if "latency" in report:
        r = report["latency"]
        print(
            f"Search at {r['chunks']} chunks x {r['dimensions']}: p50 {r['search_p50_ms']:.2f} ms,"
            f" p95 {r['search_p95_ms']:.2f} ms; with a metadata filter (10%)"
            f" p50 {r['filtered_p50_ms']:.2f} ms, p95 {r['filtered_p95_ms']:.2f} ms"
        )
        print(
            f"  matrix {r['matrix_mib']:.0f} MiB, RSS growth on load {r['rss_growth_mib']:.0f} MiB,"
            f" load {r['load_s']:.2f} s, write {r['write_s']:.1f} s, disk {r['disk_mib']:.0f} MiB"
        )


if __name__ == "__main__":
    main()
