"""The three APIs of one ``terminus serve`` (OpenAI, Ollama, Anthropic) vs raw xllamacpp.

Every side streams the same greedy chat (same GGUF, threads, prompt, sampling,
``max_tokens``) one request at a time; rounds rotate the order of the four sides so
that drift on a shared machine hits them alike. Prints per side the median time to
first token and decode tokens/s, the ratio of each to raw xllamacpp, and the load
average before and after. Not a test: nothing here asserts timings.

    python bench/bench_apis.py [--rounds 5] [--tokens 64] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from bench_server import PROMPTS, SAMPLING, SYSTEM, free_port, raw_request, start_server

PROMPT = PROMPTS[0]  # what bench_server's raw side sends for its first request
Result = tuple[float, float, int]  # (time to first token s, total s, completion tokens)


def _messages() -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}]


def openai_side(http: httpx.Client, model: str, tokens: int) -> Callable[[], Result]:
    def one() -> Result:
        body = {
            "model": model,
            "messages": _messages(),
            "max_tokens": tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
            **SAMPLING,
        }
        start, first, used = time.perf_counter(), 0.0, 0
        with http.stream("POST", "/v1/chat/completions", json=body) as response:
            for line in response.iter_lines():
                if not line.startswith("data: {"):
                    continue
                chunk = json.loads(line[6:])
                if chunk.get("usage"):
                    used = chunk["usage"]["completion_tokens"]
                if not first and chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                    first = time.perf_counter() - start
        return first, time.perf_counter() - start, used

    return one


def ollama_side(http: httpx.Client, model: str, tokens: int) -> Callable[[], Result]:
    options = {**SAMPLING, "num_predict": tokens}

    def one() -> Result:
        body = {"model": model, "messages": _messages(), "options": options}
        start, first, used = time.perf_counter(), 0.0, 0
        with http.stream("POST", "/api/chat", json=body) as response:
            for line in response.iter_lines():
                chunk = json.loads(line)
                if chunk["done"]:
                    used = chunk["eval_count"]
                elif not first and chunk["message"]["content"]:
                    first = time.perf_counter() - start
        return first, time.perf_counter() - start, used

    return one


def anthropic_side(http: httpx.Client, model: str, tokens: int) -> Callable[[], Result]:
    def one() -> Result:
        body = {
            "model": model,
            "system": SYSTEM,
            "messages": [{"role": "user", "content": PROMPT}],
            "max_tokens": tokens,
            "stream": True,
            # Anthropic's API has no seed or repeat_penalty: greedy, and the card's
            # repeat_penalty is SAMPLING's, so the text is the same
            "temperature": SAMPLING["temperature"],
            "top_p": SAMPLING["top_p"],
        }
        start, first, used = time.perf_counter(), 0.0, 0
        with http.stream("POST", "/v1/messages", json=body) as response:
            for line in response.iter_lines():
                if not line.startswith("data: "):
                    continue
                event = json.loads(line[6:])
                if event["type"] == "content_block_delta" and not first:
                    first = time.perf_counter() - start
                elif event["type"] == "message_delta":
                    used = event["usage"]["output_tokens"]
        return first, time.perf_counter() - start, used

    return one


def raw_side(gguf: str, args: argparse.Namespace) -> Callable[[], Result]:
    settings = argparse.Namespace(context=args.context, clients=1, threads=args.threads)
    settings.tokens = args.tokens
    raw = raw_request(gguf, settings)

    def one() -> Result:
        start = time.perf_counter()
        first, used = raw(0, 0)
        return first or 0.0, time.perf_counter() - start, used

    return one


def summary(name: str, results: list[Result], raw: list[Result] | None) -> str:
    ttft = statistics.median(r[0] for r in results)
    decode = statistics.median(r[2] / max(r[1] - r[0], 1e-9) for r in results)
    line = f"{name:<16} ttft {ttft * 1000:7.1f} ms | decode {decode:6.1f} tok/s"
    if raw is not None:
        raw_ttft = statistics.median(r[0] for r in raw)
        raw_decode = statistics.median(r[2] / max(r[1] - r[0], 1e-9) for r in raw)
        line += f" | vs raw: ttft x{ttft / raw_ttft:.2f}, decode x{decode / raw_decode:.2f}"
    tokens = {r[2] for r in results}
    return line + f" | tokens {sorted(tokens)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--context", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    from terminus import Terminus

    home = tempfile.mkdtemp(prefix="terminus-bench-apis-")
    with Terminus(home=home) as client:
        gguf = str(client.models.pull(args.model).main)
    port = free_port()
    serve_args = argparse.Namespace(
        model=args.model, context=args.context, clients=1, threads=args.threads
    )
    server = start_server(serve_args, home, port, Path(home) / "serve.log")
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
    sides: dict[str, Callable[[], Result]] = {
        "raw xllamacpp": raw_side(gguf, args),
        "openai": openai_side(http, args.model, args.tokens),
        "ollama": ollama_side(http, args.model, args.tokens),
        "anthropic": anthropic_side(http, args.model, args.tokens),
    }
    results: dict[str, list[Result]] = {name: [] for name in sides}
    load_before = os.getloadavg()
    try:
        for one in sides.values():
            one()  # warm up: first requests pay one-time allocations
        names = list(sides)
        for round_ in range(args.rounds):
            order = names[round_ % len(names) :] + names[: round_ % len(names)]
            for name in order:
                results[name].append(sides[name]())
    finally:
        http.close()
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
    load_after = os.getloadavg()
    print(
        f"model {args.model}, {args.threads} thread(s), max_tokens {args.tokens}, greedy, "
        f"{args.rounds} rounds (order rotated), one request at a time"
    )
    raw: Any = results["raw xllamacpp"]
    for name, runs in results.items():
        print(summary(name, runs, None if name == "raw xllamacpp" else raw))
    print(f"load average (1 min) before {load_before[0]:.2f}, after {load_after[0]:.2f}")


if __name__ == "__main__":
    main()
