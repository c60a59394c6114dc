"""A ``terminus serve`` subprocess on a free loopback port, for the end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest

THREADS = os.environ.get("TERMINUS_TEST_THREADS", "1")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def home_env(home: Path) -> dict[str, str]:
    """This process's environment for ``home``: no other TERMINUS_ setting leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERMINUS_")}
    env.update(TERMINUS_HOME=str(home), TERMINUS_OFFLINE="1", TERMINUS_MEMORY_BUDGET="2G")
    return env


def terminus(home: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run the CLI against ``home`` and return what it did."""
    return subprocess.run(
        [sys.executable, "-m", "terminus.cli.main", *args],
        env=home_env(home),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class LiveServer:
    """``terminus serve`` with SmolLM2-friendly settings (1 thread, 2 slots of 1024)."""

    def __init__(self, home: Path, extra: Sequence[str] = (), port: int | None = None) -> None:
        self.home = home
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = home.parent / f"{home.name}-{self.port}.log"
        self.extra = list(extra)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120) -> LiveServer:
        command = [
            sys.executable, "-m", "terminus.cli.main", "serve", "--port", str(self.port),
            "--context-length", "1024", "--parallel", "2", "--threads", THREADS, *self.extra,
        ]  # fmt: skip
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                command, env=home_env(self.home), stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"terminus serve exited: {self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        pytest.fail(f"terminus serve was not ready in {timeout} s:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
