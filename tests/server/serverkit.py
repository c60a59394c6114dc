"""Helpers for the server tests (a module of its own: every test folder has a conftest)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fakecards import fake_card as fake_card  # re-exported for the server tests
from fastapi import FastAPI

from terminus.engines.fake import FakeChatModel
from terminus.types import (
    CancelToken,
    ChatEvent,
    ContentDelta,
    Done,
    Stats,
    TextRequest,
    TokenLogprob,
    TokenLogprobs,
)

LONG_REPLY = " ".join(f"w{i}" for i in range(400))


def fake_complete(
    self: FakeChatModel, request: TextRequest, cancel: CancelToken
) -> Iterator[ChatEvent]:
    """Raw continuation for the fake engine: ' and so on' word by word."""
    words = [" and", " so", " on"]
    limit = request.params.max_tokens or len(words)
    produced = 0
    for word in words[:limit]:
        if cancel.cancelled:
            break
        if request.params.top_logprobs:
            top = (TokenLogprob(token=word, logprob=-0.5), TokenLogprob(token=" or", logprob=-1.5))
            yield TokenLogprobs(token=word, logprob=-0.5, top=top[: request.params.top_logprobs])
        yield ContentDelta(text=word)
        produced += 1
    yield Stats(prompt_tokens=len(request.prompt.split()), completion_tokens=produced)
    reason = "cancelled" if cancel.cancelled else ("length" if produced == limit < 3 else "stop")
    yield Done(stop_reason=reason)  # type: ignore[arg-type]


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan, and an HTTP client that calls it in-process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            yield http


def sse_events(body: str) -> list[Any]:
    """The ``data:`` payloads of an SSE body, JSON-decoded ("[DONE]" kept as a string)."""
    events: list[Any] = []
    assert body.endswith("\n\n"), body[-200:]
    for block in body.split("\n\n"):
        if not block:
            continue
        assert block.startswith("data: "), block
        data = block[len("data: ") :]
        events.append(data if data == "[DONE]" else json.loads(data))
    return events


def chat_body(content: str = "hello there", **extra: Any) -> dict[str, Any]:
    return {"model": "fake-chat", "messages": [{"role": "user", "content": content}], **extra}


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """OpenAI's error shape, with the expected status (and code)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    return dict(error)


# --- a live `terminus serve` process ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class LiveServer:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def live_server(
    home: Path, *args: str, env: Mapping[str, str] | None = None, timeout: float = 120
) -> Iterator[LiveServer]:
    """``terminus serve ARGS`` on a free loopback port, ready (``/ready`` 200) when yielded.

    Stopped with SIGINT afterwards (SIGKILL if it does not exit); its stdout and stderr
    go to ``home/serve.log``.
    """
    port = free_port()
    log = home / "serve.log"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TERMINUS_")}
    environ.update(TERMINUS_HOME=str(home), TERMINUS_OFFLINE="1", TERMINUS_MEMORY_BUDGET="2G")
    environ.update(env or {})
    command = [sys.executable, "-m", "terminus.cli.main", "serve", "--port", str(port), *args]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=environ, stdout=out, stderr=subprocess.STDOUT)
    server = LiveServer(f"http://127.0.0.1:{port}", port, process, log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise AssertionError(
                    f"terminus serve exited with {process.returncode}:\n{server.log_text()}"
                )
            try:
                if httpx.get(f"{server.url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"terminus serve was not ready in {timeout} s:\n{server.log_text()}"
                )
            time.sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
