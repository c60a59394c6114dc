"""What verifying k drafted tokens costs on this CPU, in single decode steps.

Speculative decoding wins only when the model checks k drafted tokens in one batch for
much less than k single steps (a memory-bound decode, where the weights are read once
for the whole batch). This times llama.cpp itself (the same library the worker loads,
through ctypes, no Terminus path): a batch of k tokens with k output rows, as a
verification step needs, against one token, at positions after a 200-token prompt.
Sizes alternate within each repetition. A ratio near k means speculation cannot pay on
this machine with this GGUF, whatever the share of drafts kept.

    python bench/bench_verify_cost.py [--model qwen2.5-coder-1.5b-instruct] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

SIZES = (1, 2, 4, 8, 16)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=4)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(f"bench_verify_cost: load average {load:.2f}, {os.cpu_count()} CPUs", flush=True)

    from terminus import Terminus
    from terminus.engines.llamacpp_native import LogitsModel

    with Terminus() as client:
        path = client.models.pull(args.model).main
    model = LogitsModel(path, context=4096, threads=args.threads, batch=512)
    try:
        prompt = model.tokenize("def fibonacci(n):\n    return n if n < 2 else n - 1\n" * 12)[:200]
        model.clear()
        model.decode_chunk(prompt, 0, 1)
        position = len(prompt)
        times: dict[int, list[float]] = {k: [] for k in SIZES}
        for repeat in range(args.repeats):
            order = SIZES if repeat % 2 == 0 else tuple(reversed(SIZES))
            for k in order:
                for _ in range(3):
                    started = time.perf_counter()
                    model.decode_chunk([prompt[5]] * k, position, k)
                    times[k].append(time.perf_counter() - started)
                    position += k
    finally:
        model.close()
    one = statistics.median(times[1])
    print(f"{args.model}, {args.threads} thread(s), median of {3 * args.repeats} per size:")
    for k in SIZES:
        cost = statistics.median(times[k])
        print(f"  batch of {k:2d}: {cost * 1000:7.1f} ms = {cost / one:5.2f} single steps")
    print(f"end: load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
