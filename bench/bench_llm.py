"""Terminus vs raw xllamacpp on the same GGUF, threads, context and prompt, in one run.

Prints ratios (Terminus / raw), which stay meaningful on noisy machines where
absolute numbers drift. Not a test: nothing here asserts timings.

    python bench/bench_llm.py [--model smollm2] [--rounds 5] [--tokens 128]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."
SYSTEM = "You are a helpful assistant."


def raw_server(gguf: str, context: int, parallel: int, threads: int) -> Any:
    import xllamacpp

    p = xllamacpp.CommonParams()
    p.model.path = gguf
    p.n_ctx = context * parallel
    p.n_parallel = parallel
    p.cpuparams.n_threads = threads
    p.cpuparams_batch.n_threads = threads
    p.verbosity = -1
    p.use_jinja = True
    return xllamacpp.Server(p)


def raw_stream(server: Any, prompt: str, tokens: int) -> tuple[float, float, int]:
    """(ttft s, total s, completion tokens) through the raw callback API."""
    body = {
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}],
        "max_tokens": tokens,
        "temperature": 0,
        "seed": 1,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    first: list[float] = []
    usage: dict[str, Any] = {}

    def on_chunk(chunk: dict[str, Any]) -> bool:
        if not first:
            for choice in chunk.get("choices") or ():
                if (choice.get("delta") or {}).get("content"):
                    first.append(time.perf_counter())
        if chunk.get("usage"):
            usage.update(chunk["usage"])
        return False

    start = time.perf_counter()
    server.handle_chat_completions(body, on_chunk)
    end = time.perf_counter()
    return first[0] - start, end - start, int(usage.get("completion_tokens", 0))


def terminus_stream(client: Any, model: str, prompt: str, tokens: int) -> tuple[float, float, int]:
    start = time.perf_counter()
    first = None
    completion_tokens = 0
    for event in client.completion(
        [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}],
        model=model,
        max_tokens=tokens,
        temperature=0,
        seed=1,
    ):
        if event.type == "content" and first is None:
            first = time.perf_counter()
        elif event.type == "stats":
            completion_tokens = event.completion_tokens
    end = time.perf_counter()
    assert first is not None
    return first - start, end - start, completion_tokens


def decode_rate(ttft: float, total: float, n: int) -> float:
    return (n - 1) / (total - ttft) if n > 1 and total > ttft else 0.0


def concurrent(run_one: Any, streams: int) -> float:
    """Aggregate completion tokens per second of ``streams`` simultaneous requests."""
    counts = [0] * streams

    def worker(i: int) -> None:
        counts[i] = run_one(i)[2]

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(streams)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - start)


def time_to_first_byte(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    assert proc.stdout is not None
    proc.stdout.read(1)
    elapsed = time.perf_counter() - start
    proc.kill()
    proc.wait()
    return elapsed


RAW_COLD = """
import sys, xllamacpp
p = xllamacpp.CommonParams(); p.model.path = sys.argv[1]; p.n_ctx = 2048 * 4; p.n_parallel = 4
p.cpuparams.n_threads = p.cpuparams_batch.n_threads = int(sys.argv[2]); p.verbosity = -1
p.use_jinja = True
s = xllamacpp.Server(p)
def cb(c):
    for ch in c.get("choices") or ():
        t = (ch.get("delta") or {}).get("content")
        if t:
            sys.stdout.write(t); sys.stdout.flush()
s.handle_chat_completions({"messages": [{"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Why is the sky blue?"}], "max_tokens": 8, "stream": True}, cb)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--context", type=int, default=2048)
    parser.add_argument("--parallel", type=int, default=4)
    args = parser.parse_args()

    from terminus import Terminus
    from terminus.engines.llamacpp import default_threads

    threads = default_threads()
    home = tempfile.mkdtemp(prefix="terminus-bench-")
    client = Terminus(home=home)
    info = client.load_model(
        args.model, context_length=args.context, parallel=args.parallel, threads=threads
    )
    gguf = str(client.models.pull(args.model).main)
    raw = raw_server(gguf, args.context, args.parallel, threads)
    print(
        f"model {info.id}, {threads} threads, context {args.context} x {args.parallel} slots, "
        f"{args.tokens} tokens, {args.rounds} rounds"
    )

    # warm both (first request pays one-time allocation)
    raw_stream(raw, PROMPT, 8)
    terminus_stream(client, info.id, PROMPT, 8)

    raw_runs, ours_runs = [], []
    for _ in range(args.rounds):  # interleaved, so drift hits both sides alike
        raw_runs.append(raw_stream(raw, PROMPT, args.tokens))
        ours_runs.append(terminus_stream(client, info.id, PROMPT, args.tokens))

    def summary(runs: list[tuple[float, float, int]]) -> tuple[float, float]:
        return (
            statistics.median(r[0] for r in runs),
            statistics.median(decode_rate(*r) for r in runs),
        )

    raw_ttft, raw_rate = summary(raw_runs)
    our_ttft, our_rate = summary(ours_runs)
    print(
        f"single stream  decode tok/s  raw {raw_rate:7.1f}  terminus {our_rate:7.1f}  "
        f"ratio {our_rate / raw_rate:.3f}"
    )
    print(
        f"single stream  TTFT ms       raw {raw_ttft * 1000:7.1f}  terminus {our_ttft * 1000:7.1f}  "
        f"overhead {(our_ttft - raw_ttft) * 1000:+.1f} ms"
    )

    prompts = [f"{PROMPT} Version {i}." for i in range(4)]
    samples: dict[str, list[float]] = {"raw1": [], "raw4": [], "our1": [], "our4": []}
    for _ in range(max(1, args.rounds // 2)):  # interleaved rounds; medians below
        samples["raw1"].append(concurrent(lambda i: raw_stream(raw, prompts[i], args.tokens), 1))
        samples["our1"].append(
            concurrent(lambda i: terminus_stream(client, info.id, prompts[i], args.tokens), 1)
        )
        samples["raw4"].append(concurrent(lambda i: raw_stream(raw, prompts[i], args.tokens), 4))
        samples["our4"].append(
            concurrent(lambda i: terminus_stream(client, info.id, prompts[i], args.tokens), 4)
        )
    raw_one, raw_four, our_one, our_four = (
        statistics.median(samples[k]) for k in ("raw1", "raw4", "our1", "our4")
    )
    print(
        f"4 streams      agg tok/s     raw {raw_four:7.1f} ({raw_four / raw_one:.2f}x of one)  "
        f"terminus {our_four:7.1f} ({our_four / our_one:.2f}x of one)  "
        f"ratio {our_four / raw_four:.3f}"
    )

    client.close()

    env = dict(os.environ, TERMINUS_HOME=home)
    terminus_bin = os.path.join(os.path.dirname(sys.executable), "terminus")
    cold_ours = statistics.median(
        time_to_first_byte([terminus_bin, "run", "-n", "8", "Why is the sky blue?"], env)
        for _ in range(3)
    )
    cold_raw = statistics.median(
        time_to_first_byte([sys.executable, "-c", RAW_COLD, gguf, str(threads)], env)
        for _ in range(3)
    )
    print(
        f"cold start     first token s raw {cold_raw:7.2f}  terminus run {cold_ours:7.2f}  "
        f"ratio {cold_ours / cold_raw:.2f}"
    )


if __name__ == "__main__":
    main()
