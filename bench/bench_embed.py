"""Embedding throughput: Terminus ``client.embed`` vs the raw engine, on the same batch.

- all-MiniLM-L6-v2 (numpy engine): ``client.embed`` vs the loaded model object's own
  ``embed`` (no client, transport or manager), and the bare forward pass on
  pre-tokenized ids (what tokenizing costs);
- SmolLM2-135M as a llama.cpp embedding model: ``client.embed`` vs the same
  ``xllamacpp.Server``'s ``handle_embeddings``.

Rounds alternate between the two sides so drift on a busy machine hits both alike;
medians are printed with the ratio (Terminus / raw). Not a test: nothing asserts timings.

    python bench/bench_embed.py [--texts 256] [--llama-texts 32] [--rounds 5] [--threads N]
                                [--st-python /tmp/stref/bin/python] [--no-llamacpp]

``--threads`` defaults to ``TERMINUS_THREADS`` or the physical cores. On a machine other
processes keep busy, OpenBLAS and llama.cpp both spin-wait for descheduled threads:
``--threads 1`` is then several times faster. ``--st-python`` also times
sentence-transformers (torch, same threads) from the venv bench/make_minilm_reference.py
describes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from typing import Any

SUBJECTS = [
    "The cat sat on the mat",
    "Quarterly tax filings are due at the end of April",
    "The committee reviewed the budget, the schedule and the risks of the migration",
    "How do I reset my password",
    "Share prices dropped steeply at the start of the week",
    "My grandmother bakes apple pie every Sunday afternoon for the whole family",
]


def make_texts(n: int) -> list[str]:
    """Deterministic texts from 6 to ~120 words (like passages cut for retrieval)."""
    texts = []
    for i in range(n):
        sentence = f"{SUBJECTS[i % len(SUBJECTS)]} (note {i})."
        texts.append(" ".join([sentence] * (1 + (i * 7) % 12)))
    return texts


def timed(fn: Callable[[], int]) -> tuple[float, int]:
    start = time.perf_counter()
    tokens = fn()
    return time.perf_counter() - start, tokens


def compare(
    label: str,
    sides: dict[str, Callable[[], int]],
    texts: int,
    rounds: int,
) -> None:
    for fn in sides.values():  # warm-up: thread pools, caches, first allocations
        fn()
    runs: dict[str, list[tuple[float, int]]] = {name: [] for name in sides}
    names = list(sides)
    for i in range(rounds):  # rotate who goes first, so drift hits every side alike
        for name in names[i % len(names) :] + names[: i % len(names)]:
            runs[name].append(timed(sides[name]))
    medians = {name: statistics.median(s for s, _ in r) for name, r in runs.items()}
    tokens = {name: r[0][1] for name, r in runs.items()}
    first = next(iter(sides))
    print(
        f"{label}  ({rounds} rounds, medians, {'load {:.2f} {:.2f} {:.2f}'.format(*os.getloadavg())})",
        flush=True,
    )
    for name, seconds in medians.items():
        ratio = seconds / medians[first]  # Terminus' throughput over this side's
        print(
            f"  {name:<26} {texts / seconds:8.1f} texts/s  {tokens[name] / seconds:9.0f} tokens/s"
            f"  ({seconds * 1000:7.1f} ms)"
            + (f"  terminus/this {ratio:.3f}" if name != first else "")
        )


ST_SCRIPT = """
import json, sys, time, os
os.environ["HF_HUB_OFFLINE"] = "1"
import torch
from sentence_transformers import SentenceTransformer
folder, threads, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
texts = json.loads(sys.stdin.read())
torch.set_num_threads(threads)
model = SentenceTransformer(folder, device="cpu")
model.encode(texts, batch_size=32)
times = []
for _ in range(rounds):
    start = time.perf_counter()
    model.encode(texts, batch_size=32)
    times.append(time.perf_counter() - start)
times.sort()
print(json.dumps({"seconds": times[len(times) // 2], "torch": torch.__version__}))
"""


def sentence_transformers_time(
    python: str, folder: str, texts: list[str], threads: int, rounds: int
) -> dict[str, Any]:
    result = subprocess.run(
        [python, "-c", ST_SCRIPT, folder, str(threads), str(rounds)],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        check=True,
    )
    data: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int)
    parser.add_argument(
        "--llama-texts", type=int, default=32, help="texts for llama.cpp (~10x slower per token)"
    )
    parser.add_argument("--no-llamacpp", action="store_true")
    parser.add_argument("--st-python", help="python of a venv with sentence-transformers")
    args = parser.parse_args()
    print(
        f"bench_embed: {'load {:.2f} {:.2f} {:.2f}'.format(*os.getloadavg())}, {os.cpu_count()} CPUs",
        flush=True,
    )

    from terminus import Terminus
    from terminus.engines.llamacpp import default_threads
    from terminus.models.card import ModelCard
    from terminus.types import EmbedRequest

    threads = args.threads or default_threads()
    texts = make_texts(args.texts)
    home = tempfile.mkdtemp(prefix="terminus-bench-embed-")
    client = Terminus(home=home, memory_budget="4G")

    minilm = "all-minilm-l6-v2"
    client.load_model(minilm, threads=threads)
    request = EmbedRequest(model=minilm, inputs=tuple(texts))
    with client.manager.use(minilm) as model:
        ids = model.tokenize(texts)  # type: ignore[attr-defined]
        n_tokens = sum(len(seq) for seq in ids)
        print(
            f"{len(texts)} texts, {n_tokens} MiniLM tokens (mean {n_tokens / len(texts):.0f}, "
            f"max {max(len(s) for s in ids)}), {threads} threads, {args.rounds} rounds"
        )
        compare(
            "all-MiniLM-L6-v2 (numpy)",
            {
                "terminus client.embed": lambda: client.embed(texts, model=minilm).prompt_tokens,
                "model.embed (raw)": lambda: model.embed(request).prompt_tokens,  # type: ignore[attr-defined]
                "forward only (no tokenize)": lambda: model.embed_ids(ids).shape[0] and n_tokens,  # type: ignore[attr-defined]
            },
            len(texts),
            args.rounds,
        )
    if args.st_python:
        folder = str(client.models.pull(minilm).root)
        st = sentence_transformers_time(args.st_python, folder, texts, threads, args.rounds)
        print(
            f"  {'sentence-transformers':<26} {len(texts) / st['seconds']:8.1f} texts/s  "
            f"{n_tokens / st['seconds']:9.0f} tokens/s  ({st['seconds'] * 1000:7.1f} ms)  "
            f"torch {st['torch']}, batch 32"
        )

    if not args.no_llamacpp:
        chat = client.catalog.get("smollm2-135m-instruct")
        embed_card = ModelCard(
            id="smollm2-embed",
            capability="embed",  # type: ignore[arg-type]
            engine="llamacpp",
            files=chat.files,
            sources=chat.sources,
            defaults={"pooling": "mean", "context_length": 512},
        )
        client.catalog.register(embed_card)
        client.load_model(embed_card.id, parallel=4, threads=threads)
        with client.manager.use(embed_card.id) as model:
            import xllamacpp

            from terminus.engines.llamacpp_params import build_params

            # Raw: an in-process server with the settings Terminus gave its worker process.
            settings = model.server._assignments  # type: ignore[attr-defined]
            server = xllamacpp.Server(build_params(settings))

            llama_texts = texts[: args.llama_texts]

            def raw() -> int:
                response = server.handle_embeddings({"input": llama_texts})
                return int(response["usage"]["prompt_tokens"])

            compare(
                "SmolLM2-135M embeddings (llama.cpp, mean pooling, 4 slots)",
                {
                    "terminus client.embed": lambda: (
                        client.embed(llama_texts, model=embed_card.id).prompt_tokens
                    ),
                    "raw server.handle_embeddings": raw,
                },
                len(llama_texts),
                args.rounds,
            )
    client.close()


if __name__ == "__main__":
    main()
