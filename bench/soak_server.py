"""Soak ``terminus serve`` on loopback: mixed traffic for a bounded time, then look for leaks.

N clients loop until ``--duration`` is up, each picking at random (seeded) among:
streamed chat, non-streamed chat, embeddings, a stream dropped after a few events, and
bad requests (malformed JSON, unknown model, a ``text/plain`` body, a foreign ``Host``,
a foreign ``Origin``), each with the answer it must get. Anything else is an
unexpected error. Every ``--sample-every`` seconds the resident memory of the server
process and of its children (engine workers) is printed.

After the soak: ``/health`` must show no request in flight, the chat model no busy
llama.cpp slot, and one more chat must be served as fast as before the soak (a leaked
slot would make it wait). Exit status 1 on any unexpected error or leak.
Loopback only. Not a test of speed: nothing here asserts timings.

    python bench/soak_server.py [--duration 180] [--clients 6] [--json summary.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

CHAT_MODEL = "smollm2"
EMBED_MODEL = "all-minilm-l6-v2"
SYSTEM = "You are a helpful assistant."
TOPICS = ["a lighthouse", "bees", "the sea", "a bicycle", "tomato soup", "the moon", "rain"]
#: Relative frequency of each kind of request.
MIX = {
    "stream": 30,
    "chat": 20,
    "embed": 20,
    "disconnect": 10,
    "bad": 20,
}


@dataclass
class Tally:
    done: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ok(self, kind: str) -> None:
        with self.lock:
            self.done[kind] += 1

    def fail(self, kind: str, what: str) -> None:
        with self.lock:
            self.done[kind] += 1
            self.unexpected.append(f"{kind}: {what}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def chat_body(rng: random.Random, tokens: int, **extra: Any) -> dict[str, Any]:
    prompt = f"Write two sentences about {rng.choice(TOPICS)} (#{rng.randrange(10**6)})."
    return {
        "model": CHAT_MODEL,
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}],
        "max_tokens": tokens,
        "temperature": 0.7,
        "seed": rng.randrange(1000),
        **extra,
    }


def expect(response: httpx.Response, status: int, code: str | None = None) -> str | None:
    """None when ``response`` is as expected, else what was wrong."""
    if response.status_code != status:
        return f"{response.status_code} instead of {status}: {response.text[:200]}"
    if code is not None and response.json().get("error", {}).get("code") != code:
        return f"code {response.text[:200]} instead of {code}"
    return None


def op_stream(http: httpx.Client, rng: random.Random, tokens: int) -> str | None:
    events: list[str] = []
    body = chat_body(rng, tokens, stream=True)
    with http.stream("POST", "/v1/chat/completions", json=body) as response:
        if response.status_code != 200:
            response.read()
            return expect(response, 200)
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(line.removeprefix("data: "))
    if not events or events[-1] != "[DONE]":
        return f"the stream did not end with [DONE]: {events[-2:]}"
    errors = [e for e in events[:-1] if '"error"' in e]
    return f"error event: {errors[0][:200]}" if errors else None


def op_chat(http: httpx.Client, rng: random.Random, tokens: int) -> str | None:
    response = http.post("/v1/chat/completions", json=chat_body(rng, tokens))
    wrong = expect(response, 200)
    if wrong is None and response.json()["choices"][0]["finish_reason"] not in ("stop", "length"):
        wrong = f"finish_reason {response.json()['choices'][0]['finish_reason']}"
    return wrong


def op_embed(http: httpx.Client, rng: random.Random, tokens: int) -> str | None:
    texts = [
        f"{rng.choice(TOPICS)} number {rng.randrange(10**6)}" for _ in range(rng.randint(1, 8))
    ]
    response = http.post("/v1/embeddings", json={"model": EMBED_MODEL, "input": texts})
    wrong = expect(response, 200)
    if wrong is None:
        data = response.json()["data"]
        if len(data) != len(texts) or any(len(d["embedding"]) != 384 for d in data):
            wrong = f"{len(data)} vectors for {len(texts)} texts"
    return wrong


def op_disconnect(http: httpx.Client, rng: random.Random, tokens: int) -> str | None:
    """Read a few events of a long stream, then hang up."""
    body = chat_body(rng, max(tokens, 200), stream=True)
    with http.stream("POST", "/v1/chat/completions", json=body) as response:
        if response.status_code != 200:
            response.read()
            return expect(response, 200)
        seen = 0
        for line in response.iter_lines():
            seen += line.startswith("data: ")
            if seen >= rng.randint(1, 4):
                break
    return None  # closing the response drops the connection mid-stream


BAD_REQUESTS: list[Callable[[httpx.Client, random.Random], str | None]] = [
    lambda http, rng: expect(
        http.post(
            "/v1/chat/completions",
            content=b'{"model": "smollm2", "messages": [',
            headers={"Content-Type": "application/json"},
        ),
        400,
        "invalid_json",
    ),
    lambda http, rng: expect(
        http.post("/v1/chat/completions", json={**chat_body(rng, 8), "model": "no-such-model"}),
        404,
        "model_not_found",
    ),
    lambda http, rng: expect(
        http.post(
            "/v1/chat/completions",
            content=json.dumps(chat_body(rng, 8)).encode(),
            headers={"Content-Type": "text/plain"},
        ),
        415,
        "unsupported_media_type",
    ),
    lambda http, rng: expect(
        http.get("/v1/models", headers={"Host": "attacker.example:8080"}), 403, "host_not_allowed"
    ),
    lambda http, rng: expect(
        http.post(
            "/v1/embeddings",
            json={"model": EMBED_MODEL, "input": "x"},
            headers={"Origin": "http://attacker.example"},
        ),
        403,
        "origin_not_allowed",
    ),
    lambda http, rng: expect(
        http.post("/v1/chat/completions", json={**chat_body(rng, 8), "max_tokens": -5}), 400
    ),
]


def op_bad(http: httpx.Client, rng: random.Random, tokens: int) -> str | None:
    return rng.choice(BAD_REQUESTS)(http, rng)


OPS = {
    "stream": op_stream,
    "chat": op_chat,
    "embed": op_embed,
    "disconnect": op_disconnect,
    "bad": op_bad,
}


def parse_mix(text: str) -> dict[str, int]:
    """``stream=3,embed=1`` → weights; kinds left out do not run."""
    mix: dict[str, int] = {}
    for part in text.split(","):
        kind, _, weight = part.partition("=")
        if kind.strip() not in OPS or not weight.strip().isdigit():
            raise argparse.ArgumentTypeError(f"{part!r}: use KIND=WEIGHT with KIND in {list(OPS)}")
        mix[kind.strip()] = int(weight)
    return mix


def client_loop(
    url: str, index: int, deadline: float, tokens: int, mix: dict[str, int], tally: Tally
) -> None:
    rng = random.Random(index)
    kinds, weights = list(mix), list(mix.values())
    with httpx.Client(base_url=url, timeout=120) as http:
        while time.monotonic() < deadline:
            kind = rng.choices(kinds, weights)[0]
            try:
                wrong = OPS[kind](http, rng, tokens)
            except Exception as exc:  # a transport error is unexpected too
                wrong = f"{type(exc).__name__}: {exc}"
            if wrong is None:
                tally.ok(kind)
            else:
                tally.fail(kind, wrong)


def rss_mb(process: psutil.Process) -> tuple[float, float]:
    """(server, children) resident memory in MB."""
    try:
        own = process.memory_info().rss
        children = 0
        for child in process.children(recursive=True):
            with contextlib.suppress(psutil.Error):  # a child that just exited
                children += child.memory_info().rss
    except psutil.Error:
        return float("nan"), float("nan")
    return own / 2**20, children / 2**20


def timed_chat(url: str, tokens: int) -> tuple[int, float]:
    body = chat_body(random.Random(0), tokens)
    body["temperature"] = 0
    started = time.perf_counter()
    response = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=120)
    return response.status_code, time.perf_counter() - started


def start_server(
    home: str, port: int, args: argparse.Namespace, log: Path
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERMINUS_")}
    env.update(TERMINUS_HOME=home, TERMINUS_OFFLINE="1")
    command = [
        sys.executable, "-m", "terminus.cli.main", "serve", "--host", "127.0.0.1",
        "--port", str(port), "--model", CHAT_MODEL, "--model", EMBED_MODEL,
        "--context-length", "1024", "--parallel", str(args.parallel),
        "--threads", str(args.threads), "--max-concurrent", str(args.clients + 2),
    ]  # fmt: skip
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"terminus serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"terminus serve was not ready in {timeout} s:\n{log.read_text()}")


def soak(url: str, process: psutil.Process, args: argparse.Namespace) -> dict[str, Any]:
    status, before_s = timed_chat(url, 16)
    if status != 200:
        raise SystemExit(f"the first chat failed with {status}")
    tally = Tally()
    started = time.monotonic()
    deadline = started + args.duration
    threads = [
        threading.Thread(target=client_loop, args=(url, i, deadline, args.tokens, args.mix, tally))
        for i in range(args.clients)
    ]
    for thread in threads:
        thread.start()
    samples: list[dict[str, float]] = []
    while any(t.is_alive() for t in threads):
        own, children = rss_mb(process)
        elapsed = time.monotonic() - started
        samples.append(
            {"t_s": round(elapsed), "server_mb": round(own, 1), "children_mb": round(children, 1)}
        )
        with tally.lock:
            done = sum(tally.done.values())
            bad = len(tally.unexpected)
        print(
            f"t={elapsed:5.0f}s  rss server {own:7.1f} MB  children {children:7.1f} MB  "
            f"requests {done:6d}  unexpected {bad}  load {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        next_sample = started + args.sample_every * len(samples)
        while time.monotonic() < next_sample and any(t.is_alive() for t in threads):
            time.sleep(0.2)
    for thread in threads:
        thread.join()
    own, children = rss_mb(process)
    samples.append(
        {
            "t_s": round(time.monotonic() - started),
            "server_mb": round(own, 1),
            "children_mb": round(children, 1),
        }
    )

    time.sleep(1.0)  # dropped streams: their engines wind down within a token or two
    health = httpx.get(f"{url}/health", timeout=10).json()
    info = httpx.get(f"{url}/terminus/v1/models/{CHAT_MODEL}", timeout=10).json()
    busy_slots = (info.get("loaded") or {}).get("active_requests")
    status, after_s = timed_chat(url, 16)
    warm = [s for s in samples if s["t_s"] >= args.warmup] or samples
    leaks = []
    if health.get("requests_in_flight") != 0:
        leaks.append(f"{health.get('requests_in_flight')} requests still in flight")
    if busy_slots:
        leaks.append(f"{busy_slots} llama.cpp slots still busy")
    if status != 200:
        leaks.append(f"the chat after the soak answered {status}")
    return {
        "duration_s": args.duration,
        "mix": args.mix,
        "clients": args.clients,
        "requests": dict(tally.done),
        "total_requests": sum(tally.done.values()),
        "unexpected": len(tally.unexpected),
        "unexpected_samples": tally.unexpected[:10],
        "rss_samples": samples,
        "rss_after_warmup_mb": {
            "first": warm[0]["server_mb"] + warm[0]["children_mb"],
            "last": warm[-1]["server_mb"] + warm[-1]["children_mb"],
            "max": max(s["server_mb"] + s["children_mb"] for s in warm),
        },
        "health_after": health,
        "busy_slots_after": busy_slots,
        "chat_before_s": round(before_s, 3),
        "chat_after_s": round(after_s, 3),
        "leaks": leaks,
        "load_average": os.getloadavg()[0],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=180, help="seconds of traffic")
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--tokens", type=int, default=32, help="max_tokens per chat")
    parser.add_argument("--parallel", type=int, default=2, help="llama.cpp slots")
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads")
    parser.add_argument("--sample-every", type=float, default=10, help="RSS sample period, s")
    parser.add_argument("--warmup", type=float, default=30, help="RSS before this is warm-up, s")
    parser.add_argument(
        "--mix",
        type=parse_mix,
        default=MIX,
        help="weights of the request kinds, e.g. stream=3,chat=2,embed=2,disconnect=1,bad=2",
    )
    parser.add_argument("--json", type=Path, help="also write the summary here")
    parser.add_argument("--home", help="TERMINUS_HOME for the server (default: a temporary one)")
    args = parser.parse_args()

    home = args.home or tempfile.mkdtemp(prefix="terminus-soak-")
    log = Path(home) / "soak-serve.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(home, port, args, log)
    try:
        wait_ready(url, server, log, timeout=180)
        print(f"soak: {args.clients} clients for {args.duration:.0f} s against {url}", flush=True)
        summary = soak(url, psutil.Process(server.pid), args)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        server_log = log.read_text(errors="replace")
        traceback_in_log = "Traceback" in server_log
        if traceback_in_log:
            print(server_log[-4000:], file=sys.stderr)
        if not args.home:
            shutil.rmtree(home, ignore_errors=True)
    summary["server_exit"] = server.returncode
    if traceback_in_log:
        summary["leaks"].append("a traceback in the server log")
    text = json.dumps(summary, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)
    return 1 if summary["unexpected"] or summary["leaks"] else 0


if __name__ == "__main__":
    sys.exit(main())
