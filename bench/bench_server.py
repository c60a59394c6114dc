"""``terminus serve`` under N concurrent streaming clients vs raw xllamacpp, in one run.

Both sides get the same GGUF, threads, slots, prompts and sampling, and the same
load: 1 client, then N clients, each for ``--duration`` seconds, every client
streaming one chat completion after another. The server side goes over loopback
HTTP (SSE) into a ``terminus serve`` subprocess; the raw side calls an in-process
``xllamacpp.Server`` from threads. Phases alternate (served, raw, served, raw) so
that drift on a shared machine hits both sides alike. Prints errors (must be 0), aggregate tokens/s,
p50/p95 time to first token, server RSS before/after, and server/raw ratios.
Not a test: nothing here asserts timings.

    python bench/bench_server.py [--clients 4] [--duration 20] [--tokens 128] [--threads 1]

``--threads`` defaults to 1: the bench's own clients share the machine's cores, and
llama.cpp's spinning thread pool stalls when anything competes with it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

SYSTEM = "You are a helpful assistant."
PROMPTS = [
    "Write a short story about a lighthouse keeper who finds a message in a bottle.",
    "Explain how a bicycle works to a ten year old.",
    "Describe a day in the life of a honey bee.",
    "Write a letter from a cat to its owner.",
    "Explain why the sky is blue.",
    "Describe the water cycle step by step.",
    "Write a recipe for a simple tomato soup.",
    "Tell me about the history of the printing press.",
]
#: The card's defaults made explicit, so both sides sample alike.
SAMPLING: dict[str, Any] = {"temperature": 0, "seed": 1, "top_p": 0.9, "repeat_penalty": 1.1}

OneRequest = Callable[[int, int], tuple[float | None, int]]  # (client, n) -> (ttft s, tokens)


@dataclass
class Load:
    clients: int
    seconds: float = 0.0
    tokens: int = 0
    requests: int = 0
    errors: list[str] = field(default_factory=list)
    ttfts: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    def ttft_ms(self, q: float) -> float:
        if not self.ttfts:
            return float("nan")
        ordered = sorted(self.ttfts)
        return 1000 * ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def messages(client: int, n: int) -> list[dict[str, str]]:
    prompt = PROMPTS[(client * 3 + n) % len(PROMPTS)]
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]


def run_load(one: OneRequest, clients: int, duration: float) -> Load:
    """``clients`` threads issue requests back to back until ``duration`` has passed."""
    load = Load(clients)
    lock = threading.Lock()
    deadline = time.perf_counter() + duration

    def worker(client: int) -> None:
        n = 0
        while time.perf_counter() < deadline:
            try:
                ttft, tokens = one(client, n)
            except Exception as exc:
                with lock:
                    load.errors.append(f"{type(exc).__name__}: {exc}")
                continue
            finally:
                n += 1
            with lock:
                load.requests += 1
                load.tokens += tokens
                if ttft is not None:
                    load.ttfts.append(ttft)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    load.seconds = time.perf_counter() - started
    return load


# --- terminus serve ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tree_rss(process: psutil.Process) -> int:
    """RSS of the server and its children (each model's llama.cpp worker process)."""
    return process.memory_info().rss + sum(
        child.memory_info().rss for child in process.children(recursive=True)
    )


def start_server(
    args: argparse.Namespace, home: str, port: int, log: Path
) -> subprocess.Popen[bytes]:
    env = dict(os.environ, TERMINUS_HOME=home, TERMINUS_OFFLINE="1")
    command = [
        sys.executable, "-m", "terminus.cli.main", "serve", "--port", str(port),
        "--model", args.model, "--context-length", str(args.context),
        "--parallel", str(args.clients), "--threads", str(args.threads),
        "--max-concurrent", str(args.clients * 2),
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"terminus serve exited:\n{log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    sys.exit(f"terminus serve was not ready in 120 s:\n{log.read_text()}")


def http_request(port: int, model: str, tokens: int) -> tuple[OneRequest, Callable[[], None]]:
    http = httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        timeout=120,
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
    )

    def one(client: int, n: int) -> tuple[float | None, int]:
        body = {
            "model": model,
            "messages": messages(client, n),
            "max_tokens": tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
            **SAMPLING,
        }
        start = time.perf_counter()
        first: float | None = None
        used = None
        with http.stream("POST", "/v1/chat/completions", json=body) as response:
            if response.status_code != 200:
                raise RuntimeError(f"HTTP {response.status_code}: {response.read()[:200]!r}")
            for line in response.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                if "error" in chunk:
                    raise RuntimeError(chunk["error"]["message"])
                if chunk.get("usage"):
                    used = chunk["usage"]["completion_tokens"]
                if (
                    first is None
                    and chunk["choices"]
                    and chunk["choices"][0]["delta"].get("content")
                ):
                    first = time.perf_counter() - start
        if used is None:
            raise RuntimeError("no usage chunk")
        return first, int(used)

    return one, http.close


# --- raw xllamacpp ---------------------------------------------------------------------------


def raw_request(gguf: str, args: argparse.Namespace) -> OneRequest:
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = gguf
    params.n_ctx = args.context * args.clients
    params.n_parallel = args.clients
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.verbosity = -1
    params.use_jinja = True
    server = xllamacpp.Server(params)

    def one(client: int, n: int) -> tuple[float | None, int]:
        body = {
            "messages": messages(client, n),
            "max_tokens": args.tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
            **SAMPLING,
        }
        start = time.perf_counter()
        first: list[float] = []
        used: dict[str, Any] = {}

        def on_chunk(chunk: dict[str, Any]) -> bool:
            if "error" in chunk:
                used["error"] = chunk["error"]
            if chunk.get("usage"):
                used.update(chunk["usage"])
            if not first:
                for choice in chunk.get("choices") or ():
                    if (choice.get("delta") or {}).get("content"):
                        first.append(time.perf_counter() - start)
            return False

        server.handle_chat_completions(body, on_chunk)
        if "error" in used:
            raise RuntimeError(str(used["error"]))
        return (first[0] if first else None), int(used.get("completion_tokens", 0))

    one.server = server  # type: ignore[attr-defined]  # kept alive with the function
    return one


# --- report ----------------------------------------------------------------------------------


def line(name: str, one: Load, many: Load) -> str:
    return (
        f"{name:<16} 1 client {one.rate:7.1f} tok/s | {many.clients} clients {many.rate:7.1f} tok/s "
        f"({many.rate / one.rate if one.rate else 0:.2f}x) | TTFT p50 {many.ttft_ms(0.5):6.0f} ms "
        f"p95 {many.ttft_ms(0.95):6.0f} ms | requests {one.requests}+{many.requests} | "
        f"errors {len(one.errors) + len(many.errors)}"
    )


def load_average() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def phase(name: str, one: OneRequest, clients: int, duration: float) -> Load:
    load = run_load(one, clients, duration)
    print(
        f"  {name:<16} {clients} client(s) {load.rate:7.1f} tok/s, {load.requests} requests  "
        f"{load_average()}",
        flush=True,
    )
    return load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per load phase")
    parser.add_argument("--tokens", type=int, default=128, help="max_tokens per request")
    parser.add_argument("--context", type=int, default=1024, help="context per slot")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    print(f"bench_server: {load_average()}, {os.cpu_count()} CPUs", flush=True)

    from terminus import Terminus

    home = tempfile.mkdtemp(prefix="terminus-bench-server-")
    try:
        with Terminus(home=home) as client:
            gguf = str(client.models.pull(args.model).main)
        log = Path(home) / "serve.log"
        port = free_port()
        print(
            f"model {args.model}, {args.threads} thread(s), {args.clients} slots x context "
            f"{args.context}, max_tokens {args.tokens}, {args.duration:.0f} s per phase"
        )
        server = start_server(args, home, port, log)
        raw = raw_request(gguf, args)
        me = psutil.Process()
        try:
            process = psutil.Process(server.pid)
            rss_loaded = tree_rss(process)
            one, close = http_request(port, args.model, args.tokens)
            try:
                one(0, 0)  # warm up both: a first request pays one-time allocations
                raw(0, 0)
                rss_before, raw_before = tree_rss(process), me.memory_info().rss
                # A-B-B-A, so drift on a shared machine hits both sides alike
                served_one = phase("terminus serve", one, 1, args.duration)
                raw_one = phase("raw xllamacpp", raw, 1, args.duration)
                raw_many = phase("raw xllamacpp", raw, args.clients, args.duration)
                served_many = phase("terminus serve", one, args.clients, args.duration)
                rss_after, raw_after = tree_rss(process), me.memory_info().rss
            finally:
                close()
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()

        print(line("terminus serve", served_one, served_many))
        print(line("raw xllamacpp", raw_one, raw_many))
        mib = 1024 * 1024
        print(
            f"server RSS      after load {rss_loaded / mib:6.1f} MiB, warm {rss_before / mib:6.1f} MiB, "
            f"after the load phases {rss_after / mib:6.1f} MiB (+{(rss_after - rss_before) / mib:.1f}); "
            f"raw process +{(raw_after - raw_before) / mib:.1f} MiB under the same load"
        )
        ratio_one = served_one.rate / raw_one.rate if raw_one.rate else 0.0
        ratio_many = served_many.rate / raw_many.rate if raw_many.rate else 0.0
        print(
            f"server / raw    tok/s ratio 1 client {ratio_one:.3f}, {args.clients} clients "
            f"{ratio_many:.3f}; p95 TTFT {served_many.ttft_ms(0.95) - raw_many.ttft_ms(0.95):+.0f} ms"
            f"  {load_average()}"
        )
        errors = served_one.errors + served_many.errors + raw_one.errors + raw_many.errors
        for error in errors[:10]:
            print(f"error: {error}")
        print(f"errors {len(errors)}")
        if errors:
            sys.exit(1)
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
