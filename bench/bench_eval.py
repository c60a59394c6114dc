"""Evaluation throughput: items/s with parallel slots ÷ one at a time, Terminus next to raw
xllamacpp doing the same items with the same slots, in one run.

First, the limit: llama.cpp's prompt-processing rate on the same model and threads (one
request over a long prompt made of the items' prompts, one token generated), turned into
the items/s a log-likelihood run would reach if it did nothing but process each item's
prompt; every log-likelihood figure is also printed as a fraction of that limit.

Both sides score the same seeded MedQA items from tests/data/medbench with the same
prompts: log-likelihood mode (one token, 100 alternatives, prompt computed afresh) and
generative mode (chat, ``--tokens`` tokens). Rounds are interleaved and medians
reported; ratios stay meaningful on busy machines where absolute numbers drift. Not a
test: nothing here asserts timings.

    python bench/bench_eval.py [--items 8] [--rounds 3] [--tokens 32] [--threads 1] [--only MODE]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

DATA = Path(__file__).parents[1] / "tests" / "data" / "medbench"
MODEL = "smollm2-135m-instruct"


def items_per_second(work: Callable[[Any], Any], items: list[Any], parallel: int) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        list(pool.map(work, items))
    return len(items) / (time.perf_counter() - started)


def prompt_rate(raw: Any, text: str, rounds: int) -> tuple[float, int]:
    """(tokens/s, tokens) of llama.cpp processing ``text`` once, fresh, best of ``rounds``:
    the prompt-processing speed that bounds log-likelihood scoring."""
    best, tokens = 0.0, 0
    for _ in range(rounds):
        started = time.perf_counter()
        out = raw.handle_completions(
            {"prompt": text, "max_tokens": 1, "temperature": 0, "cache_prompt": False}
        )
        seconds = time.perf_counter() - started
        timings = out.get("timings") or {}
        tokens = int(timings.get("prompt_n") or out.get("usage", {}).get("prompt_tokens", 0))
        rate = float(timings.get("prompt_per_second") or 0) or tokens / seconds
        best = max(best, rate)
    return best, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--only", choices=["loglikelihood", "generative"], help="One mode only.")
    args = parser.parse_args()
    print(
        f"bench_eval: {'load {:.2f} {:.2f} {:.2f}'.format(*os.getloadavg())}, {os.cpu_count()} CPUs",
        flush=True,
    )

    import xllamacpp

    from terminus import Terminus
    from terminus.eval.backends import ClientBackend
    from terminus.eval.datasets import load_benchmark
    from terminus.eval.items import sample
    from terminus.eval.prompts import GENERATIVE_SYSTEM, generative_prompt, loglikelihood_prompt

    items = sample(load_benchmark("medqa", DATA, DATA, allow_download=False).items, args.items, 0)
    home = tempfile.mkdtemp(prefix="bench-eval-")
    client = Terminus(home=home, allow_download=False, memory_budget="4G")
    client.load_model(MODEL, context_length=1024, parallel=args.parallel, threads=args.threads)
    backend = ClientBackend(client, MODEL, parallel=args.parallel)
    gguf = str(client.cache.files(client.catalog.get(MODEL)).main)

    params = xllamacpp.CommonParams()
    params.model.path = gguf
    params.n_ctx = 1024 * args.parallel
    params.n_parallel = args.parallel
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.verbosity = -1
    params.use_jinja = True
    raw = xllamacpp.Server(params)

    def messages(item: Any) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": GENERATIVE_SYSTEM},
            {"role": "user", "content": generative_prompt(item)},
        ]

    def raw_body(item: Any) -> dict[str, Any]:
        """Exactly the body Terminus sends for this item (same sampling), not streamed."""
        request = client.chat_request(
            messages(item), model=MODEL, max_tokens=args.tokens, temperature=0.0, seed=0,
            repeat_penalty=1.0, cache_prompt=False,
        )  # fmt: skip
        with client.manager.use(MODEL) as model:
            body, _ = model.build_body(request)  # type: ignore[attr-defined]
        return {k: v for k, v in body.items() if k not in ("stream", "stream_options")}

    work: dict[str, dict[str, Callable[[Any], Any]]] = {
        "loglikelihood": {
            "terminus": lambda item: backend.next_token(loglikelihood_prompt("medqa", item), 100),
            "raw": lambda item: raw.handle_completions(
                {
                    "prompt": loglikelihood_prompt("medqa", item),
                    "max_tokens": 1,
                    "temperature": 0,
                    "n_probs": 100,
                    "cache_prompt": False,
                }
            ),  # fmt: skip
        },
        "generative": {
            "terminus": lambda item: backend.generate(
                messages(item), max_tokens=args.tokens, temperature=0.0, seed=0
            ),
            "raw": lambda item: raw.handle_chat_completions(raw_body(item)),
        },
    }
    print(f"{args.items} MedQA items, {args.parallel} slots, {args.threads} thread(s), "
          f"{args.rounds} interleaved rounds (medians); load average {os.getloadavg()[0]:.1f}",
          flush=True)  # fmt: skip
    prompts = [loglikelihood_prompt("medqa", item) for item in items]
    # One long prompt (well inside the context) measures llama.cpp's batched prompt speed.
    joined = "\n\n".join(prompts)[: 3 * 1024]
    rate, joined_tokens = prompt_rate(raw, joined, max(1, args.rounds))
    per_item = statistics.mean(
        int(raw.handle_completions({"prompt": p, "max_tokens": 1, "temperature": 0,
                                    "cache_prompt": False})["usage"]["prompt_tokens"])
        for p in prompts
    )  # fmt: skip
    limit = rate / per_item
    print(f"limit: llama.cpp processes prompts at {rate:.0f} tokens/s ({joined_tokens} tokens, "
          f"best of {max(1, args.rounds)}); items average {per_item:.0f} prompt tokens, so "
          f"log-likelihood scoring is bounded by {limit:.3f} items/s", flush=True)  # fmt: skip
    for mode, sides in work.items():
        if args.only and mode != args.only:
            continue
        rates: dict[tuple[str, int], list[float]] = {}
        names = list(sides)
        for i in range(args.rounds):  # alternate which side (and which slot count) goes first
            for side in names if i % 2 == 0 else names[::-1]:
                for parallel in (1, args.parallel) if i % 2 == 0 else (args.parallel, 1):
                    rates.setdefault((side, parallel), []).append(
                        items_per_second(sides[side], items, parallel)
                    )
            print(f"  {mode} round {i + 1} ({names[0] if i % 2 == 0 else names[-1]} first) "
                  f"{'load {:.2f} {:.2f} {:.2f}'.format(*os.getloadavg())}", flush=True)  # fmt: skip
        med = {key: statistics.median(values) for key, values in rates.items()}
        t_gain = med[("terminus", args.parallel)] / med[("terminus", 1)]
        r_gain = med[("raw", args.parallel)] / med[("raw", 1)]
        print(f"\n{mode}")
        for side in ("terminus", "raw"):
            print(f"  {side:<9} items/s one at a time {med[(side, 1)]:.3f}, "
                  f"{args.parallel} in flight {med[(side, args.parallel)]:.3f}")  # fmt: skip
        print(f"  slots ÷ one at a time: terminus {t_gain:.2f}x, raw {r_gain:.2f}x")
        print(f"  terminus / raw with slots: {med[('terminus', args.parallel)] / med[('raw', args.parallel)]:.3f}"
              f"  (one at a time: {med[('terminus', 1)] / med[('raw', 1)]:.3f}; target >= 0.95)")  # fmt: skip
        if mode == "loglikelihood":
            best = max(med[("terminus", 1)], med[("terminus", args.parallel)])
            print(f"  terminus items/s ÷ prompt-processing limit: {best / limit:.2f} "
                  f"(limit ÷ terminus {limit / best:.2f}x; target within 2x)", flush=True)  # fmt: skip
    client.close()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
