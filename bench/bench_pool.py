"""Delegation latency under load, and the aggregate speed of a pool of 1, 2, 3 providers.

Latency: SmolLM2 on a `terminus provide` process (1 thread, 1 slot) vs the same model loaded
in this process with the same options; time to first token of each, in alternating order,
on the machine as it is and again with busy neighbour processes this bench starts (one
spinning process per core). Printed: the medians, the time delegation adds, the load average.

Transport only: the same on the scripted fake engine (no decode time), medians of 60, so the
figure is what the delegation path itself adds.

Pool: N providers (`terminus provide`, 1 thread, 1 slot each) take 2·N concurrent greedy
requests through one ``PoolTransport``; aggregate completion tokens per second, and the
ratio to one provider in the same run.

Not a test: nothing here asserts timings.

    python bench/bench_pool.py [--rounds 9] [--tokens 32] [--skip-latency] [--skip-pool]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

TERMINUS = [sys.executable, "-m", "terminus.cli.main"]
PROMPT = "Write a short story about a lighthouse keeper."


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def env_for(home: Path) -> dict[str, str]:
    return {**os.environ, "TERMINUS_HOME": str(home), "TERMINUS_THREADS": "1"}


@contextlib.contextmanager
def providers(root: Path, consumer_key: str, count: int) -> Iterator[list[str]]:
    """``count`` SmolLM2 providers on 127.0.0.1, killed on exit."""
    procs: list[subprocess.Popen[bytes]] = []
    refs: list[Path] = []
    try:
        for i in range(count):
            ref = root / f"provider{i}.ref"
            ref.unlink(missing_ok=True)
            procs.append(
                subprocess.Popen(
                    [
                        *TERMINUS,
                        "--offline",
                        "provide",
                        "--model",
                        "smollm2",
                        "--allow",
                        consumer_key,
                        "--context-length",
                        "1024",
                        "--parallel",
                        "1",
                        "--listen",
                        "127.0.0.1:0",
                        "--ref-file",
                        str(ref),
                    ],
                    env=env_for(root / f"provider{i}"),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )  # fmt: skip
            )
            refs.append(ref)
        for ref, proc in zip(refs, procs, strict=True):
            while not (ref.exists() and ref.read_text().endswith("\n")):
                if proc.poll() is not None:
                    raise SystemExit("a provider exited")
                time.sleep(0.1)
        yield [ref.read_text().strip() for ref in refs]
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextlib.contextmanager
def busy_neighbours(count: int, own_session: bool = True) -> Iterator[None]:
    """Spinning processes. In their own session they are another program (Linux autogroups
    share the CPU between sessions first); in this one they compete inside the bench's share."""
    spinners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=own_session)
        for _ in range(count)
    ]
    try:
        time.sleep(1.0)  # let the scheduler see them
        yield
    finally:
        for proc in spinners:
            proc.kill()
            proc.wait()


def first_token_s(client: Any, tokens: int = 4) -> float:
    """The prompt is cached in the slot after the first call (llama.cpp's prompt cache), so
    this is one decode step plus whatever the path to the model adds."""
    started = time.perf_counter()
    for event in client.completion(
        PROMPT, model="smollm2", max_tokens=tokens, temperature=0, seed=1
    ):
        if event.type == "content":
            return time.perf_counter() - started
    return float("nan")


def latency(args: argparse.Namespace, root: Path) -> None:
    from terminus import Terminus
    from terminus.p2p.identity import load_or_create_identity

    consumer_home = root / "consumer"
    key = load_or_create_identity(consumer_home).node_id
    with providers(root, key, 1) as refs:
        remote = Terminus(home=consumer_home, delegate=refs[0], allow_download=False)
        local = Terminus(home=root / "local", allow_download=False)
        local.load_model("smollm2", context_length=1024, parallel=1, threads=1)
        for client in (remote, local):
            first_token_s(client)  # warm both paths once
        cores = os.cpu_count() or 1
        for condition, neighbours in (("as is", 0), (f"+{cores} busy neighbours", cores)):
            samples: dict[str, list[float]] = {"local": [], "peer": []}
            with busy_neighbours(neighbours):
                for i in range(args.rounds):
                    order = [("local", local), ("peer", remote)]
                    for name, client in order if i % 2 == 0 else order[::-1]:
                        samples[name].append(first_token_s(client))
                where = load()
            med = {k: statistics.median(v) * 1e3 for k, v in samples.items()}
            added = [(p - q) * 1e3 for p, q in zip(samples["peer"], samples["local"], strict=True)]
            print(
                f"time to first token, {condition:<22} local {med['local']:6.1f} ms  "
                f"peer {med['peer']:6.1f} ms  added {med['peer'] - med['local']:+6.1f} ms "
                f"(per-round median {statistics.median(added):+.1f}, "
                f"spread {min(added):+.0f}..{max(added):+.0f})  [{where}]",
                flush=True,
            )
        remote.close()
        local.close()


def transport_only(args: argparse.Namespace, root: Path) -> None:
    """The same comparison on the scripted fake engine (no decode time): what the path adds."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
    from fakecards import fake_card

    from terminus import Terminus
    from terminus.models.catalog import Catalog
    from terminus.p2p.identity import load_or_create_identity

    consumer_home = root / "fake-consumer"
    key = load_or_create_identity(consumer_home).node_id
    home = root / "fake-provider"
    Catalog(home / "cards").save_user_card(
        fake_card(root / "fw", replies=["a b c d"], token_delay_s=0.0, user_added=True)
    )
    ref_file = root / "fake.ref"
    proc = subprocess.Popen(
        [*TERMINUS, "--offline", "provide", "--model", "fake-chat", "--allow", key,
         "--listen", "127.0.0.1:0", "--ref-file", str(ref_file)],
        env=env_for(home), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        while not (ref_file.exists() and ref_file.read_text().endswith("\n")):
            time.sleep(0.05)
        remote = Terminus(home=consumer_home, delegate=ref_file.read_text().strip())
        local = Terminus(home=root / "fake-local")
        for client in (remote, local):
            client.catalog.register(fake_card(root / "fw2", replies=["a b c d"]))

        def first(client: Any) -> float:
            started = time.perf_counter()
            for event in client.completion("hi", model="fake-chat"):
                if event.type == "content":
                    break
            return (time.perf_counter() - started) * 1e3

        for client in (remote, local):
            first(client)
        cores = os.cpu_count() or 1
        conditions = [
            ("as is", 0, True),
            (f"+{cores} busy neighbours", cores, True),
            (f"+{cores} busy, same session", cores, False),
        ]
        for condition, neighbours, own in conditions:
            with busy_neighbours(neighbours, own):
                runs = [(first(local), first(remote)) for _ in range(args.fake_rounds)]
                where = load()
            peer = sorted(r[1] for r in runs)
            print(
                f"transport only (fake engine), {condition:<28} local "
                f"{statistics.median(r[0] for r in runs):5.2f} ms  peer median "
                f"{statistics.median(peer):5.1f} ms  p90 {peer[int(0.9 * len(peer))]:5.1f} ms  "
                f"[{where}]",
                flush=True,
            )
        remote.close()
        local.close()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def pool(args: argparse.Namespace, root: Path) -> None:
    from terminus import Terminus
    from terminus.p2p.identity import load_or_create_identity

    consumer_home = root / "consumer"
    key = load_or_create_identity(consumer_home).node_id
    rates: dict[int, float] = {}
    for count in (1, 2, 3):
        with providers(root, key, count) as refs:
            client = Terminus(
                home=consumer_home, delegate=refs if count > 1 else refs[0], allow_download=False
            )

            def ask(_: int, client: Any = client) -> int:
                done = client.completion(
                    PROMPT, model="smollm2", max_tokens=args.tokens, temperature=0,
                    seed=1, cache_prompt=False,
                ).result()  # fmt: skip
                return done.stats.completion_tokens if done.stats else 0

            ask(0)  # connect and warm
            jobs = 2 * count * args.pool_rounds
            started = time.perf_counter()
            with ThreadPoolExecutor(2 * count) as workers:
                tokens = sum(workers.map(ask, range(jobs)))
            rates[count] = tokens / (time.perf_counter() - started)
            client.close()
        print(
            f"pool of {count}: {rates[count]:6.1f} tok/s aggregate ({jobs} requests, "
            f"{rates[count] / rates[1]:.2f}x one provider)  [{load()}]",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--pool-rounds", type=int, default=2, help="requests per slot")
    parser.add_argument("--fake-rounds", type=int, default=60)
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-pool", action="store_true")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, {load()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="terminus-bench-pool-") as tmp:
        if not args.skip_latency:
            transport_only(args, Path(tmp))
            latency(args, Path(tmp))
        if not args.skip_pool:
            pool(args, Path(tmp))


if __name__ == "__main__":
    main()
