"""Terminus vs raw xllamacpp on the same GGUF, load settings, request body and sampling, in one run.

The raw side is an in-process ``xllamacpp.Server`` built from the very settings
Terminus sends its worker process, and it gets the very request body Terminus
builds (the card's sampling, system prompt and all, greedy with a fixed seed), so
the two sides differ only by Terminus's own path: the worker process, the event
stream, the client. Rounds alternate which side goes first; every round prints
its ratio as it ends, then medians with their spread (min..max). Both sides must
generate the same number of tokens (and the same text, greedy, one stream at a
time); a mismatch is printed. Not a test: nothing here asserts timings.

    python bench/bench_llm.py [--model smollm2] [--rounds 5] [--tokens 128] [--threads 1]
                              [--cold-rounds 4] [--no-cold | --only-cold]

``--threads`` defaults to 1: llama.cpp's spinning thread pool stalls when anything
else competes for the cores, which would measure the machine, not Terminus.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."
SAMPLING: dict[str, Any] = {"temperature": 0.0, "seed": 1}  # over the card's defaults


@dataclass(frozen=True)
class Run:
    ttft: float  # seconds to the first content token
    total: float
    tokens: int  # completion tokens, as llama.cpp counted them
    text: str
    gaps: tuple[float, ...] = ()  # seconds between content chunks

    @property
    def quick_decode(self) -> float:
        """Tokens per second from the 10th-percentile gap between tokens: the speed between
        preemptions, which a loaded machine disturbs far less than the mean."""
        if len(self.gaps) < 10:
            return 0.0
        return 1 / statistics.quantiles(self.gaps, n=10)[0]

    @property
    def decode(self) -> float:
        """Tokens per second after the first one."""
        span = self.total - self.ttft
        return (self.tokens - 1) / span if self.tokens > 1 and span > 0 else 0.0


def load_average() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def spread(values: list[float], fmt: str = "{:.3f}") -> str:
    return (
        f"{fmt.format(statistics.median(values))} "
        f"({fmt.format(min(values))}..{fmt.format(max(values))})"
    )


class Sides:
    """The two ways to run one request: raw xllamacpp, and Terminus."""

    def __init__(
        self, client: Any, model: str, raw: Any, body_of: Callable[..., Any], worker_pid: int
    ) -> None:
        import psutil

        self.client = client
        self.model = model
        self.raw = raw
        self._body_of = body_of
        self._host = psutil.Process()
        self._worker = psutil.Process(worker_pid)

    def cpu_seconds(self, side: str) -> float:
        """CPU time used so far by the processes that serve ``side``."""
        processes = [self._host] if side == "raw" else [self._host, self._worker]
        return sum(sum(p.cpu_times()[:2]) for p in processes)

    def request(self, prompt: str, tokens: int) -> Any:
        """The ``ChatRequest`` ``client.completion`` builds from the same arguments."""
        return self.client.chat_request(prompt, model=self.model, max_tokens=tokens, **SAMPLING)

    def raw_run(self, prompt: str, tokens: int) -> Run:
        body = self._body_of(self.request(prompt, tokens))
        arrivals: list[float] = []
        parts: list[str] = []
        usage: dict[str, Any] = {}

        def on_chunk(chunk: dict[str, Any]) -> bool:
            for choice in chunk.get("choices") or ():
                text = (choice.get("delta") or {}).get("content")
                if text:
                    arrivals.append(time.perf_counter())  # every content chunk's arrival
                    parts.append(text)
            usage.update(chunk.get("usage") or {})
            return False

        start = time.perf_counter()
        self.raw.handle_chat_completions(body, on_chunk)
        end = time.perf_counter()
        return Run(
            arrivals[0] - start,
            end - start,
            int(usage["completion_tokens"]),
            "".join(parts),
            _gaps(arrivals),
        )

    def our_run(self, prompt: str, tokens: int) -> Run:
        start = time.perf_counter()
        arrivals: list[float] = []
        parts: list[str] = []
        completion_tokens = 0
        for event in self.client.completion(
            prompt, max_tokens=tokens, **SAMPLING, model=self.model
        ):
            if event.type == "content":
                arrivals.append(time.perf_counter())
                parts.append(event.text)
            elif event.type == "stats":
                completion_tokens = event.completion_tokens
        end = time.perf_counter()
        assert arrivals, "no content"
        return Run(
            arrivals[0] - start, end - start, completion_tokens, "".join(parts), _gaps(arrivals)
        )


def _gaps(arrivals: list[float]) -> tuple[float, ...]:
    return tuple(b - a for a, b in zip(arrivals, arrivals[1:], strict=False))


def concurrent(run_one: Callable[[int], Run], streams: int) -> tuple[float, list[Run]]:
    """Aggregate completion tokens per second of ``streams`` simultaneous requests."""
    runs: list[Run | None] = [None] * streams

    def one(i: int) -> None:
        runs[i] = run_one(i)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(streams)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    done = [r for r in runs if r is not None]
    return sum(r.tokens for r in done) / elapsed, done


def longest_stall(action: Callable[[], Any]) -> tuple[float, Any]:
    """(longest gap between 5 ms ticks of a host thread while ``action`` runs, its result)."""
    gaps: list[float] = []
    stop = threading.Event()

    def tick() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            time.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticker = threading.Thread(target=tick)
    ticker.start()
    try:
        result = action()
    finally:
        stop.set()
        ticker.join()
    return max(gaps, default=0.0), result


def time_to_first_byte(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(seconds to the first stdout byte, CPU seconds of the whole run, its children included)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    assert proc.stdout is not None
    proc.stdout.read(1)
    elapsed = time.perf_counter() - start
    proc.stdout.read()
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0
    proc.stdout.close()
    return elapsed, usage.ru_utime + usage.ru_stime


# A plain script on the same GGUF: the body `terminus run` sends (card sampling and
# system prompt) comes in argv[3], so both sides decode the same request.
RAW_COLD = """
import json, sys, xllamacpp
p = xllamacpp.CommonParams(); p.model.path = sys.argv[1]; p.n_ctx = 2048 * 4; p.n_parallel = 4
p.cpuparams.n_threads = p.cpuparams_batch.n_threads = int(sys.argv[2]); p.verbosity = -1
p.use_jinja = True
s = xllamacpp.Server(p)
def cb(c):
    for ch in c.get("choices") or ():
        t = (ch.get("delta") or {}).get("content")
        if t:
            sys.stdout.write(t); sys.stdout.flush()
s.handle_chat_completions(json.loads(sys.argv[3]), cb)
"""
COLD_PROMPT = "Why is the sky blue?"


def single_stream(sides: Sides, rounds: int, tokens: int) -> None:
    decode_ratios, quick_ratios, ttft_overheads, mismatches = [], [], [], 0
    ttfts: dict[str, list[float]] = {"raw": [], "ours": []}
    cpu: dict[str, list[float]] = {"raw": [], "ours": []}  # CPU ms per generated token
    for i in range(rounds):
        order = ("raw", "ours") if i % 2 == 0 else ("ours", "raw")
        runs = {}
        for side in order:
            before = sides.cpu_seconds(side)
            runs[side] = (sides.raw_run if side == "raw" else sides.our_run)(PROMPT, tokens)
            cpu[side].append((sides.cpu_seconds(side) - before) * 1000 / runs[side].tokens)
            ttfts[side].append(runs[side].ttft * 1000)
        raw, ours = runs["raw"], runs["ours"]
        same = raw.tokens == ours.tokens and raw.text == ours.text
        mismatches += not same
        decode_ratios.append(ours.decode / raw.decode)
        quick_ratios.append(ours.quick_decode / raw.quick_decode)
        ttft_overheads.append((ours.ttft - raw.ttft) * 1000)
        print(
            f"  round {i + 1} ({order[0]} first)  decode tok/s raw {raw.decode:6.1f} "
            f"terminus {ours.decode:6.1f} ratio {decode_ratios[-1]:.3f}  "
            f"TTFT ms raw {raw.ttft * 1000:6.1f} terminus {ours.ttft * 1000:6.1f} "
            f"({ttft_overheads[-1]:+.1f})  tokens {raw.tokens}/{ours.tokens}"
            f"{'' if same else '  MISMATCH'}  {load_average()}",
            flush=True,
        )
    print(
        f"1 stream   decode ratio {spread(decode_ratios)}   "
        f"between preemptions (p10 gap) {spread(quick_ratios)}   "
        f"TTFT overhead ms {spread(ttft_overheads, '{:+.1f}')} "
        f"(best of each side: raw {min(ttfts['raw']):.1f}, terminus {min(ttfts['ours']):.1f})   "
        f"same tokens and text in {rounds - mismatches}/{rounds} rounds\n"
        f"           CPU ms per token: raw {spread(cpu['raw'], '{:.2f}')}, "
        f"terminus host + worker {spread(cpu['ours'], '{:.2f}')}",
        flush=True,
    )


def first_token(sides: Sides, requests: int) -> None:
    """Time to first token of short requests, alternating sides: the best of many shows
    Terminus's own cost per request where scheduling noise swamps a median."""
    ttfts: dict[str, list[float]] = {"raw": [], "ours": []}
    for i in range(requests):
        for side in ("raw", "ours") if i % 2 == 0 else ("ours", "raw"):
            run = (sides.raw_run if side == "raw" else sides.our_run)(PROMPT, 2)
            ttfts[side].append(run.ttft * 1000)
    raw, ours = ttfts["raw"], ttfts["ours"]
    print(
        f"TTFT, {requests} short requests each  best raw {min(raw):.1f} ms terminus "
        f"{min(ours):.1f} ms ({min(ours) - min(raw):+.1f})   median raw "
        f"{statistics.median(raw):.1f} terminus {statistics.median(ours):.1f} "
        f"({statistics.median(ours) - statistics.median(raw):+.1f})  {load_average()}",
        flush=True,
    )


def four_streams(sides: Sides, rounds: int, tokens: int, streams: int) -> None:
    prompts = [f"{PROMPT} Version {i}." for i in range(streams)]
    ratios, ttft_overheads, count_mismatches = [], [], 0
    cpu: dict[str, list[float]] = {"raw": [], "ours": []}  # CPU ms per generated token
    for i in range(rounds):
        order = ("raw", "ours") if i % 2 == 0 else ("ours", "raw")
        results: dict[str, tuple[float, list[Run]]] = {}
        for side in order:
            run = sides.raw_run if side == "raw" else sides.our_run
            before = sides.cpu_seconds(side)
            results[side] = concurrent(lambda k, run=run: run(prompts[k], tokens), streams)  # type: ignore[misc]
            generated = sum(r.tokens for r in results[side][1])
            cpu[side].append((sides.cpu_seconds(side) - before) * 1000 / max(1, generated))
        (raw_rate, raw_runs), (our_rate, our_runs) = results["raw"], results["ours"]
        raw_counts = [r.tokens for r in raw_runs]
        our_counts = [r.tokens for r in our_runs]
        count_mismatches += raw_counts != our_counts
        ratios.append(our_rate / raw_rate)
        overhead = statistics.median(
            o.ttft - r.ttft for o, r in zip(our_runs, raw_runs, strict=True)
        )
        ttft_overheads.append(overhead * 1000)
        print(
            f"  round {i + 1} ({order[0]} first)  aggregate tok/s raw {raw_rate:6.1f} "
            f"terminus {our_rate:6.1f} ratio {ratios[-1]:.3f}  TTFT overhead "
            f"{ttft_overheads[-1]:+.1f} ms  tokens {sum(raw_counts)}/{sum(our_counts)}"
            f"{'' if raw_counts == our_counts else '  MISMATCH'}  {load_average()}",
            flush=True,
        )
    print(
        f"{streams} streams  aggregate ratio {spread(ratios)}   "
        f"TTFT overhead ms {spread(ttft_overheads, '{:+.1f}')}   "
        f"same token counts in {rounds - count_mismatches}/{rounds} rounds\n"
        f"           CPU ms per token: raw {spread(cpu['raw'], '{:.2f}')}, "
        f"terminus host + worker {spread(cpu['ours'], '{:.2f}')}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--context", type=int, default=2048)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ttft-requests", type=int, default=20)
    parser.add_argument("--no-cold", action="store_true", help="skip the cold-start comparison")
    parser.add_argument("--cold-rounds", type=int, default=4)
    parser.add_argument("--only-cold", action="store_true", help="skip the warm comparisons")
    args = parser.parse_args()
    print(f"bench_llm: {load_average()}, {os.cpu_count()} CPUs", flush=True)

    from terminus import Terminus
    from terminus.engines.llamacpp_params import build_params

    home = tempfile.mkdtemp(prefix="terminus-bench-")
    client = Terminus(home=home)
    gguf = str(client.models.pull(args.model).main)
    our_stall, info = longest_stall(
        lambda: client.load_model(
            args.model, context_length=args.context, parallel=args.parallel, threads=args.threads
        )
    )
    with client.manager.use(info.id) as model:
        settings = model.server._assignments  # type: ignore[attr-defined]
        body_of = model.build_body  # type: ignore[attr-defined]
        worker_pid = model.worker_pid  # type: ignore[attr-defined]

    import xllamacpp

    raw_stall, raw = longest_stall(lambda: xllamacpp.Server(build_params(settings)))
    sides = Sides(client, info.id, raw, lambda request: body_of(request)[0], worker_pid)
    sampling = {
        k: v
        for k, v in body_of(sides.request(PROMPT, args.tokens))[0].items()
        if k not in ("messages", "stream", "stream_options")
    }
    print(
        f"model {info.id}, {args.threads} thread(s), context {args.context} x "
        f"{args.parallel} slots, {args.tokens} tokens, {args.rounds} rounds\n"
        f"request body on both sides (besides messages): {sampling}\n"
        f"longest host stall while loading: raw in-process {raw_stall * 1000:.0f} ms, "
        f"terminus (worker process) {our_stall * 1000:.0f} ms",
        flush=True,
    )
    cold_body = body_of(client.chat_request(COLD_PROMPT, model=info.id, max_tokens=8))[0]
    sides.raw_run(PROMPT, 8)  # warm both (the first request pays one-time allocations)
    sides.our_run(PROMPT, 8)

    if not args.only_cold:
        single_stream(sides, args.rounds, args.tokens)
        first_token(sides, args.ttft_requests)
        four_streams(sides, max(2, args.rounds - 1), args.tokens, args.streams)
    client.close()
    del raw
    if args.no_cold:
        return

    env = dict(os.environ, TERMINUS_HOME=home, TERMINUS_THREADS=str(args.threads))
    terminus_bin = os.path.join(os.path.dirname(sys.executable), "terminus")
    ours_cmd = [terminus_bin, "run", "-n", "8", COLD_PROMPT]
    raw_cmd = [sys.executable, "-c", RAW_COLD, gguf, str(args.threads), json.dumps(cold_body)]
    print(f"cold start: {args.cold_rounds} rounds, alternating; {load_average()}", flush=True)
    cold: dict[str, list[float]] = {"raw": [], "ours": []}
    cold_cpu: dict[str, list[float]] = {"raw": [], "ours": []}
    for i in range(args.cold_rounds):
        for side in ("raw", "ours") if i % 2 == 0 else ("ours", "raw"):
            wall, cpu = time_to_first_byte(raw_cmd if side == "raw" else ours_cmd, env)
            cold[side].append(wall)
            cold_cpu[side].append(cpu)
        print(
            f"  cold round {i + 1}  raw {cold['raw'][-1]:.2f} s  terminus run "
            f"{cold['ours'][-1]:.2f} s  ratio {cold['ours'][-1] / cold['raw'][-1]:.2f}  "
            f"CPU s raw {cold_cpu['raw'][-1]:.2f} terminus run {cold_cpu['ours'][-1]:.2f}  "
            f"{load_average()}",
            flush=True,
        )
    print(
        f"cold start first token s  raw {spread(cold['raw'], '{:.2f}')}  "
        f"terminus run {spread(cold['ours'], '{:.2f}')}  ratio "
        f"{statistics.median(cold['ours']) / statistics.median(cold['raw']):.2f}   CPU s (whole "
        f"run, worker included) raw {spread(cold_cpu['raw'], '{:.2f}')} terminus run "
        f"{spread(cold_cpu['ours'], '{:.2f}')}  {load_average()}",
        flush=True,
    )


if __name__ == "__main__":
    main()
