"""Peer-to-peer: transfer and delegated inference, as ratios against raw baselines in one run.

Transfer: a random-bytes "model" goes from `terminus share` processes on 127.0.0.1
into a fresh cache (piece-verified by libtorrent, whole-file sha256 by the cache,
renamed into place); its time is divided into a raw loopback TCP copy of the same
file (sendfile -> recv -> write) measured in the same run. Also: 2 seeders vs 1, and
libtorrent alone, tuned: a bare session leeching from the same seeder process (no
cache, no whole-file hash, no fsync; with --with-defaults also its default settings). Rounds run in alternating order and print as they end (with
per-round ratios and the load average). Each path's CPU seconds (this process, where
the leecher and the raw copy run, plus the seeder processes) are summed too: on a
machine with few cores, CPU time bounds the wall time.

Delegated inference: SmolLM2 on a `terminus provide` process vs the same model
loaded here with the same options; tokens/s ratio and added time to first token.
Not a test: nothing here asserts timings.

    python bench/bench_p2p.py [--size-mb 200] [--rounds 3] [--tokens 64] [--skip-infer]
                              [--skip-transfer] [--with-defaults]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

TERMINUS = [sys.executable, "-m", "terminus.cli.main"]
MODEL = "benchblob"


def env_for(home: Path) -> dict[str, str]:
    return {**os.environ, "TERMINUS_HOME": str(home), "TERMINUS_THREADS": "1"}


def make_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with path.open("wb") as fh:
        left = size
        while left:
            block = os.urandom(min(left, 8 << 20))
            fh.write(block)
            digest.update(block)
            left -= len(block)
    return digest.hexdigest()


def seed_home(root: Path, name: str, source: Path, sha: str, size: int) -> Path:
    home = root / name
    (home / "cards").mkdir(parents=True)
    (home / "cards" / f"{MODEL}.toml").write_text(
        f'id = "{MODEL}"\ncapability = "chat"\nengine = "fake"\nformat = "fake"\n'
        f'[[files]]\nname = "weights.bin"\nsha256 = "{sha}"\nsize = {size}\n'
        f'[[sources]]\ntype = "local"\npaths = {{ "weights.bin" = "{source}" }}\n'
    )
    subprocess.run([*TERMINUS, "pull", MODEL], env=env_for(home), check=True, capture_output=True)
    return home


def raw_tcp_copy(src: Path, dst: Path) -> float:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]

    def serve() -> None:
        conn, _ = server.accept()
        with src.open("rb") as fh:
            conn.sendfile(fh)
        conn.close()

    thread = threading.Thread(target=serve)
    thread.start()
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as sock, dst.open("wb") as out:
        while block := sock.recv(1 << 20):
            out.write(block)
    elapsed = time.perf_counter() - started
    thread.join()
    server.close()
    dst.unlink()
    return elapsed


def start_seeder(home: Path, procs: list[subprocess.Popen[bytes]]) -> str:
    ref_file = home / "ref.txt"
    ref_file.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [*TERMINUS, "share", MODEL, "--listen", "127.0.0.1:0", "--ref-file", str(ref_file)],
        env=env_for(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    procs.append(proc)
    while not (ref_file.exists() and ref_file.read_text().endswith("\n")):
        if proc.poll() is not None:
            raise SystemExit("seeder exited")
        time.sleep(0.05)
    return ref_file.read_text().strip()


def pull_into_fresh_cache(root: Path, ref: str) -> float:
    from terminus.models.cache import ModelCache
    from terminus.models.catalog import Catalog
    from terminus.p2p.pull import pull_from_peers

    home = Path(tempfile.mkdtemp(dir=root))
    started = time.perf_counter()
    pull_from_peers(Catalog(home / "cards"), ModelCache(home), ref)
    elapsed = time.perf_counter() - started
    shutil.rmtree(home)
    return elapsed


def libtorrent_alone(root: Path, ref: Any, tuned: bool) -> float:
    """A bare libtorrent session (no cache, no hash of its own) leeching from the same
    seeder process as the Terminus pull: the engine's own speed on this path."""
    import libtorrent as lt

    from terminus.p2p.reference import parse_address
    from terminus.p2p.torrent import make_session

    leecher = make_session("127.0.0.1:0", tuned=tuned)
    target = Path(tempfile.mkdtemp(dir=root))
    wanted = lt.parse_magnet_uri(f"magnet:?xt=urn:btmh:1220{ref.info_hash}")
    wanted.save_path = str(target)
    # As the pull does: added paused, so resuming connects to the known peers at once.
    wanted.flags |= lt.torrent_flags.paused
    wanted.flags &= ~lt.torrent_flags.auto_managed
    started = time.perf_counter()
    handle = leecher.add_torrent(wanted)
    for peer in ref.peers:
        handle.connect_peer(parse_address(peer))
    handle.resume()
    while not handle.status().is_seeding:
        time.sleep(0.01)
    elapsed = time.perf_counter() - started
    del leecher
    shutil.rmtree(target)
    return elapsed


def cpu_seconds(seeders: list[subprocess.Popen[bytes]]) -> float:
    """CPU time used so far by this process and the seeder processes (with their children)."""
    import psutil

    own = resource.getrusage(resource.RUSAGE_SELF)
    total = own.ru_utime + own.ru_stime
    for proc in seeders:
        with_children = [psutil.Process(proc.pid)]
        with_children += with_children[0].children(recursive=True)
        total += sum(sum(p.cpu_times()[:2]) for p in with_children)
    return total


def transfer(args: argparse.Namespace, root: Path) -> None:
    size = args.size_mb * 1_000_000
    mb = size / 1e6
    load_before = os.getloadavg()
    print(
        f"transfer of {args.size_mb} MB on 127.0.0.1, {args.rounds} rounds in alternating order; "
        f"load average {load_before[0]:.2f} ({os.cpu_count()} CPUs)",
        flush=True,
    )
    source = root / "random.bin"
    sha = make_file(source, size)
    homes = [seed_home(root, f"seed-{i}", source, sha, size) for i in range(2)]
    procs: list[subprocess.Popen[bytes]] = []
    rows: dict[str, list[float]] = {"raw": [], "one": [], "two": [], "lt-tuned": []}
    if args.with_defaults:
        rows["lt-default"] = []
    cpu: dict[str, list[float]] = {key: [] for key in rows}
    try:
        from terminus.p2p.reference import parse_reference

        ref_a = parse_reference(start_seeder(homes[0], procs))
        ref_b = parse_reference(start_seeder(homes[1], procs))
        one, two = ref_a.format(), ref_a.with_peers(ref_b.peers).format()
        runs = {
            "raw": lambda: raw_tcp_copy(source, root / "copy.bin"),
            "one": lambda: pull_into_fresh_cache(root, one),
            "two": lambda: pull_into_fresh_cache(root, two),
            "lt-tuned": lambda: libtorrent_alone(root, ref_a, tuned=True),
            "lt-default": lambda: libtorrent_alone(root, ref_a, tuned=False),
        }
        print("seeders up; each round: seconds, and the ratio to that round's raw copy", flush=True)
        for i in range(args.rounds):  # alternating order, so drift hits every variant alike
            order = list(rows) if i % 2 == 0 else list(reversed(rows))
            for key in order:
                before = cpu_seconds(procs)
                rows[key].append(runs[key]())
                time.sleep(0.3)  # the session closing on its own thread counts too
                cpu[key].append(cpu_seconds(procs) - before)
            raw = rows["raw"][-1]
            print(
                f"round {i + 1} ({' -> '.join(order)}): "
                + ", ".join(f"{k} {rows[k][-1]:.2f}s ({raw / rows[k][-1]:.2f})" for k in rows)
                + f"; load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    load_after = os.getloadavg()
    med = {k: statistics.median(v) for k, v in rows.items()}
    print(
        f"\ntransfer of {args.size_mb} MB on 127.0.0.1, median of {args.rounds} rounds; "
        f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after"
    )
    print(
        f"  raw TCP copy (sendfile -> file)        {mb / med['raw']:8.0f} MB/s   ratio 1.00"
        f"   CPU {statistics.median(cpu['raw']):.2f} s"
    )
    labels = {
        "one": "1 seeder, verified in the cache",
        "two": "2 seeders, verified in the cache",
        "lt-tuned": "libtorrent alone (tuned), same seeder",
        "lt-default": "libtorrent alone (defaults)",
    }
    for key in rows:
        if key == "raw":
            continue
        ratios = sorted(r / t for r, t in zip(rows["raw"], rows[key], strict=True))
        print(
            f"  {labels[key]:<38} {mb / med[key]:8.0f} MB/s   ratio {statistics.median(ratios):.2f}"
            f" (per round {ratios[0]:.2f}-{ratios[-1]:.2f})   CPU {statistics.median(cpu[key]):.2f} s"
        )
    print(
        f"  (CPU: seconds of this process and the seeders, median; {os.cpu_count()} CPUs give "
        "at most that many CPU seconds per second of wall time)"
    )
    speedups = sorted(o / t for o, t in zip(rows["one"], rows["two"], strict=True))
    print(
        f"  2 seeders / 1 seeder speed: {statistics.median(speedups):.2f}x "
        f"(per round {speedups[0]:.2f}-{speedups[-1]:.2f})"
    )
    print(
        "  verified in the cache / libtorrent engine only: "
        f"{statistics.median(t / o for o, t in zip(rows['one'], rows['lt-tuned'], strict=True)):.2f}"
    )


def stream_timing(client: Any, prompt: str, tokens: int) -> tuple[float, float, int]:
    started = time.perf_counter()
    first = None
    count = 0
    for event in client.completion(
        prompt, model="smollm2", max_tokens=tokens, temperature=0, seed=1
    ):
        if event.type == "content":
            count += 1
            if first is None:
                first = time.perf_counter() - started
    return first or 0.0, time.perf_counter() - started, count


def infer(args: argparse.Namespace, root: Path) -> None:
    from terminus import Terminus
    from terminus.p2p.identity import load_or_create_identity
    from terminus.transports.peer import PeerTransport

    consumer_home = root / "consumer"
    key = load_or_create_identity(consumer_home).node_id
    ref_file = root / "node.txt"
    proc = subprocess.Popen(
        [
            *TERMINUS,
            "provide",
            "--model",
            "smollm2",
            "--allow",
            key,
            "--context-length",
            "1024",
            "--parallel",
            "1",
            "--listen",
            "127.0.0.1:0",
            "--ref-file",
            str(ref_file),
        ],
        env=env_for(root / "provider"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        while not (ref_file.exists() and ref_file.read_text().endswith("\n")):
            if proc.poll() is not None:
                raise SystemExit("provider exited")
            time.sleep(0.1)
        remote = Terminus(
            home=consumer_home,
            transport=PeerTransport(ref_file.read_text().strip(), home=consumer_home),
        )
        local = Terminus(home=root / "local")
        local.load_model("smollm2", context_length=1024, parallel=1, threads=1)
        prompt = "Write a short story about a lighthouse keeper."
        stream_timing(remote, prompt, 8)  # warm both paths once
        stream_timing(local, prompt, 8)
        rows: dict[str, list[tuple[float, float, int]]] = {"local": [], "peer": []}
        clients = {"local": local, "peer": remote}
        busy = start_busy(args.busy)
        try:
            for i in range(args.rounds):  # alternating order: drift hits both paths alike
                for key in ("local", "peer") if i % 2 == 0 else ("peer", "local"):
                    rows[key].append(stream_timing(clients[key], prompt, args.tokens))
        finally:
            stop_busy(busy)
        remote.close()
        local.close()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def rate(samples: list[tuple[float, float, int]]) -> float:
        return statistics.median(n / (total - ttft) for ttft, total, n in samples if n > 1)

    ttft = {k: statistics.median(s[0] for s in v) for k, v in rows.items()}
    print(
        f"\ndelegated completion (SmolLM2, 1 thread, {args.tokens} tokens, median of "
        f"{args.rounds}, {args.busy} busy neighbour processes; load {os.getloadavg()[0]:.2f})"
    )
    print(f"  decode tokens/s  peer / local: {rate(rows['peer']) / rate(rows['local']):.2f}")
    print(
        f"  time to first token: local {ttft['local'] * 1000:.0f} ms, peer "
        f"{ttft['peer'] * 1000:.0f} ms (added {1000 * (ttft['peer'] - ttft['local']):.0f} ms)"
    )


def start_busy(count: int) -> list[subprocess.Popen[bytes]]:
    """``count`` processes that spin on a core each: neighbours competing for the CPU."""
    spin = "while True: pass"
    return [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(count)]


def stop_busy(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.kill()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--skip-infer", action="store_true")
    parser.add_argument("--skip-transfer", action="store_true")
    parser.add_argument(
        "--busy",
        type=int,
        default=0,
        help="spinning neighbour processes during the delegation part",
    )
    parser.add_argument(
        "--with-defaults", action="store_true", help="also libtorrent's default settings (slow)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="terminus-bench-p2p-") as tmp:
        root = Path(tmp)
        if not args.skip_transfer:
            transfer(args, root)
        if not args.skip_infer:
            infer(args, root)


if __name__ == "__main__":
    main()
