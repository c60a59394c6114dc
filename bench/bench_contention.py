"""Decode speed on a quiet and on a busy machine, Terminus vs raw xllamacpp, in one run.

Each condition loads a Terminus model with the threads Terminus chooses itself (the
cores left free by other work, and an OpenMP wait policy to match: see
terminus.engines.llamacpp_threads; ``--threads 2`` fixes the count instead) and two raw
in-process ``xllamacpp.Server``s built from the very same load settings with 1 and
with 2 threads (the OpenMP defaults a plain script gets). Both sides get the same request body (the one
Terminus builds: the card's sampling, greedy, fixed seed). Rounds rotate which
side goes first. The busy condition starts one neighbour process that spins on
a core for the whole condition. A run stops after ``--cap-s`` seconds so that a
collapsed side cannot stall the bench; its speed is still measured. A third condition
(when Terminus chooses its threads) loads on the quiet machine, then starts the
neighbour: two requests later Terminus must have replaced its worker (its re-check
interval is shortened to 0.5 s here).

Goals: busy, Terminus >= 0.9x raw 1 thread; quiet, Terminus ~ raw 2 threads. The machine may be shared: the load average is printed beside
every figure. Not a test: nothing here asserts timings.

    python bench/bench_contention.py [--model smollm2] [--rounds 3] [--tokens 64] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from bench_llm import PROMPT, load_average, spread

NEIGHBOUR = "while True: pass"


def decode_rate(arrivals: list[float], start: float) -> float:
    """Tokens per second after the first; a run that barely moved counts from its start."""
    if len(arrivals) > 2:
        return (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    return len(arrivals) / (time.perf_counter() - start)


def ratios(ours: list[float], theirs: list[float]) -> str:
    return spread([o / t if t else float("inf") for o, t in zip(ours, theirs, strict=True)])


def raw_run(server: Any, body: dict[str, Any], cap_s: float) -> tuple[float, int, str]:
    arrivals: list[float] = []
    parts: list[str] = []
    start = time.perf_counter()

    def on_chunk(chunk: dict[str, Any]) -> bool:
        for choice in chunk.get("choices") or ():
            text = (choice.get("delta") or {}).get("content")
            if text:
                arrivals.append(time.perf_counter())
                parts.append(text)
        return time.perf_counter() - start > cap_s  # True stops llama.cpp

    server.handle_chat_completions(body, on_chunk)
    return decode_rate(arrivals, start), len(arrivals), "".join(parts)


def our_run(client: Any, model: str, tokens: int, cap_s: float) -> tuple[float, int, str]:
    arrivals: list[float] = []
    parts: list[str] = []
    start = time.perf_counter()
    stream = client.completion(PROMPT, model=model, max_tokens=tokens, temperature=0.0, seed=1)
    for event in stream:
        if event.type == "content":
            arrivals.append(time.perf_counter())
            parts.append(event.text)
            if time.perf_counter() - start > cap_s:
                break
    return decode_rate(arrivals, start), len(arrivals), "".join(parts)


def chosen_threads(client: Any, model_id: str) -> tuple[int, dict[str, str], list[Any]]:
    """The threads and OpenMP wait settings of the model's worker now, and its settings."""
    import psutil

    with client.manager.use(model_id) as model:
        settings = list(model.server._assignments)  # type: ignore[attr-defined]
        worker = psutil.Process(model.worker_pid)  # type: ignore[attr-defined]
    waits = {
        k: v for k, v in worker.environ().items() if k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
    }
    return dict(settings)["cpuparams.n_threads"], waits, settings


def condition(
    name: str, client: Any, args: argparse.Namespace, start_late: bool = False
) -> dict[str, float]:
    """``start_late``: the neighbour starts after the load, and Terminus must notice it."""
    import xllamacpp

    from terminus.engines.llamacpp_params import build_params

    info = client.load_model(args.model, threads=args.threads, parallel=1)
    with client.manager.use(info.id) as model:
        body = model.build_body(
            client.chat_request(
                PROMPT, model=info.id, max_tokens=args.tokens, temperature=0.0, seed=1
            )
        )[0]  # type: ignore[attr-defined]
    chosen, waits, settings = chosen_threads(client, info.id)
    print(f"  {name}: Terminus chose {chosen} thread(s) at the load, waits {waits}", flush=True)
    raws: dict[int, Any] = {}
    for threads in (1, 2):
        params = build_params(
            [*settings, ("cpuparams.n_threads", threads), ("cpuparams_batch.n_threads", threads)]
        )
        raws[threads] = xllamacpp.Server(params)
    neighbour = None
    if start_late:
        neighbour = subprocess.Popen([sys.executable, "-c", NEIGHBOUR])
        time.sleep(1)
        for _ in range(2):  # two readings that disagree with the worker replace it
            our_run(client, info.id, args.tokens, args.cap_s)
        chosen, waits, _ = chosen_threads(client, info.id)
        print(f"  {name}: after two requests, {chosen} thread(s), waits {waits}", flush=True)
    ours_label = f"terminus {chosen} thread{'s' if chosen > 1 else ''}"
    sides = {
        "raw 1 thread": lambda: raw_run(raws[1], body, args.cap_s),
        "raw 2 threads": lambda: raw_run(raws[2], body, args.cap_s),
        ours_label: lambda: our_run(client, info.id, args.tokens, args.cap_s),
    }
    try:
        return _rounds(name, client, info.id, args, sides, ours_label, raws)
    finally:
        if neighbour is not None:
            neighbour.kill()
            neighbour.wait()


def _rounds(
    name: str,
    client: Any,
    model_id: str,
    args: argparse.Namespace,
    sides: dict[str, Any],
    ours_label: str,
    raws: dict[int, Any],
) -> dict[str, float]:
    for run in sides.values():
        run()  # warm: the first request pays one-time allocations
    rates: dict[str, list[float]] = {side: [] for side in sides}
    names = list(sides)
    for i in range(args.rounds):
        order = names[i % len(names) :] + names[: i % len(names)]
        results = {side: sides[side]() for side in order}
        for side, (rate, _, _) in results.items():
            rates[side].append(rate)
        counts = {side: count for side, (_, count, _) in results.items()}
        texts = {text for _, count, text in results.values() if count >= args.tokens - 1}
        print(
            f"  {name} round {i + 1} ({order[0]} first)  "
            + "  ".join(f"{side} {results[side][0]:6.1f} tok/s ({counts[side]})" for side in names)
            + f"{'  TEXT MISMATCH' if len(texts) > 1 else ''}  {load_average()}",
            flush=True,
        )
    medians = {side: statistics.median(values) for side, values in rates.items()}
    ours = rates[ours_label]
    print(
        f"{name}: tok/s median (min..max)  "
        + "  ".join(f"{side} {spread(values, '{:.1f}')}" for side, values in rates.items())
        + f"\n{name}: {ours_label} / raw 1 thread "
        f"{ratios(ours, rates['raw 1 thread'])}   "
        f"/ raw 2 threads {ratios(ours, rates['raw 2 threads'])}"
        f"  {load_average()}",
        flush=True,
    )
    client.unload_model(model_id)
    raws.clear()  # frees both raw models
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--cap-s", type=float, default=8.0, help="stop a run after this long")
    parser.add_argument("--threads", type=int, default=None, help="fix Terminus's threads")
    args = parser.parse_args()
    print(f"bench_contention: {load_average()}, {os.cpu_count()} CPUs", flush=True)
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        sys.exit("unset OMP_WAIT_POLICY and GOMP_SPINCOUNT: the raw side runs OpenMP's defaults")
    os.environ.pop("TERMINUS_THREADS", None)  # the bench sets threads itself

    from terminus import Terminus

    client = Terminus(home=tempfile.mkdtemp(prefix="terminus-bench-"))
    client.models.pull(args.model)
    condition("quiet", client, args)
    neighbour = subprocess.Popen([sys.executable, "-c", NEIGHBOUR])
    try:
        time.sleep(1)
        condition("busy (1 spinning neighbour)", client, args)
    finally:
        neighbour.kill()
        neighbour.wait()
    if args.threads is None:
        from terminus.engines.llamacpp_threads import ThreadTuner

        ThreadTuner.RECHECK_S = 0.5  # the default 15 s would only make the bench longer
        time.sleep(2)  # the neighbour's exit settles before the quiet load
        condition("neighbour started after the load", client, args, start_late=True)
    client.close()


if __name__ == "__main__":
    main()
