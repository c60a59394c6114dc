"""Memory under many distinct prompts: llama.cpp's prompt cache, bounded vs llama.cpp's default.

llama.cpp keeps the KV state of past prompts in RAM (its server's ``--cache-ram``,
8192 MiB per model by default); Terminus bounds it (``prompt_cache_mib``, default
256) and counts the bound in the model's memory. This sends the same ``--prompts``
distinct chat prompts to a model loaded with Terminus's bound and to one loaded
with llama.cpp's default, one after the other, and prints the worker process's RSS
every ``--every`` prompts. Not a test: nothing here asserts.

    python bench/bench_prompt_cache.py [--prompts 1000] [--every 100] [--bound 256] [--words 40]
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time

import psutil

LLAMA_CPP_DEFAULT_MIB = 8192
WORDS = [
    "river",
    "stone",
    "garden",
    "lamp",
    "window",
    "paper",
    "engine",
    "market",
    "winter",
    "orange",
    "silver",
    "forest",
    "ladder",
    "cloud",
    "bridge",
    "candle",
    "harbor",
    "violin",
    "meadow",
    "copper",
    "signal",
    "planet",
    "thunder",
]


def prompts(n: int, words: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [
        f"Note {i}: " + " ".join(rng.choice(WORDS) for _ in range(words)) + ". Summarize."
        for i in range(n)
    ]


def run(model: str, bound: int, texts: list[str], every: int, threads: int) -> list[float]:
    from terminus import Terminus

    home = tempfile.mkdtemp(prefix="terminus-bench-")
    client = Terminus(home=home, memory_policy="off")
    info = client.load_model(
        model, context_length=1024, parallel=4, threads=threads, prompt_cache_mib=bound
    )
    with client.manager.use(model) as loaded:
        pid = loaded.worker_pid  # type: ignore[attr-defined]
    worker = psutil.Process(pid)
    start_rss = worker.memory_info().rss
    print(
        f"prompt_cache_mib {bound:5d}: counted memory {info.memory_bytes / 2**20:.0f} MiB, "
        f"worker RSS at start {start_rss / 2**20:.0f} MiB",
        flush=True,
    )
    samples: list[float] = []
    started = time.perf_counter()
    for i, text in enumerate(texts, 1):
        client.completion(model, text, max_tokens=1, temperature=0.0).text()
        if i % every == 0:
            rss = worker.memory_info().rss
            samples.append(rss / 2**20)
            print(
                f"  {i:5d} prompts  worker RSS {rss / 2**20:7.0f} MiB  "
                f"(+{(rss - start_rss) / 2**20:6.0f})  {time.perf_counter() - started:6.1f} s  "
                f"load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
    client.close()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--prompts", type=int, default=1000)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--bound", type=int, default=None, help="MiB (default: Terminus's)")
    parser.add_argument("--words", type=int, default=40, help="words per prompt")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-default", action="store_true", help="only the bounded run")
    args = parser.parse_args()

    from terminus.engines.llamacpp import DEFAULT_PROMPT_CACHE_MIB

    bound = DEFAULT_PROMPT_CACHE_MIB if args.bound is None else args.bound
    texts = prompts(args.prompts, args.words)
    print(
        f"model {args.model}, {args.prompts} distinct prompts of {args.words} words, "
        f"{args.threads} thread(s), load average {os.getloadavg()}",
        flush=True,
    )
    bounded = run(args.model, bound, texts, args.every, args.threads)
    if args.skip_default:
        return
    unbounded = run(args.model, LLAMA_CPP_DEFAULT_MIB, texts, args.every, args.threads)
    print(
        f"RSS growth after the first sample: bound {bound} MiB "
        f"+{bounded[-1] - bounded[0]:.0f} MiB; llama.cpp's default "
        f"+{unbounded[-1] - unbounded[0]:.0f} MiB; load average {os.getloadavg()}"
    )


if __name__ == "__main__":
    main()
