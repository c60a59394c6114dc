"""Helpers for the web app's browser tests (a module of its own: every test folder has a
conftest, so tests import these by this module's name)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

KEY = "sk-terminus-webapp"
SHOTS = Path(
    os.environ.get("TERMINUS_UI_SHOTS") or Path(tempfile.gettempdir()) / "terminus-ui-shots"
)


@dataclass(frozen=True)
class LiveServer:
    url: str
    home: Path
    log: Path

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=120
        )


def shot(page: Any, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve_live(home: Path, extra: Sequence[str] = ()) -> Iterator[LiveServer]:
    """``terminus serve`` on ``home`` (offline, 1 thread, the API key), stopped with SIGINT."""
    log = home.parent / f"{home.name}.log"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERMINUS_")}
    env.update(TERMINUS_HOME=str(home), TERMINUS_OFFLINE="1", TERMINUS_MEMORY_BUDGET="3G")
    env["TERMINUS_EVAL_DATA_DIR"] = str(Path(__file__).parents[1] / "data" / "medbench")
    command = [
        sys.executable, "-m", "terminus.cli.main", "serve", "--port", str(port),
        "--context-length", "2048", "--parallel", "1", "--threads", "1", "--api-key", KEY,
        *extra,
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"terminus serve exited:\n{log.read_text()}")
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"terminus serve did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield LiveServer(url, home, log)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
