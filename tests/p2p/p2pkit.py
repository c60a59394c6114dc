"""Helpers for the multi-process peer tests: subprocesses that are always killed, ports."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).parent
TERMINUS = [sys.executable, "-m", "terminus.cli.main"]
BIG_SIZE = 200 * 1000 * 1000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def env_for(home: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"TERMINUS_HOME": str(home), "TERMINUS_THREADS": "1", **extra})
    env.pop("TERMINUS_OFFLINE", None)
    return env


class Processes:
    """Subprocesses a test starts; every one is killed when the test ends, whatever happens."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, args: list[str], home: Path, name: str, **env: str) -> subprocess.Popen[bytes]:
        self.logs.mkdir(parents=True, exist_ok=True)
        with (
            (self.logs / f"{name}.out").open("wb") as out,
            (self.logs / f"{name}.err").open("wb") as err,
        ):
            proc = subprocess.Popen(
                args, env=env_for(home, **env), stdout=out, stderr=err, start_new_session=True
            )
        self.procs.append(proc)
        return proc

    def log(self, name: str) -> str:
        out = (self.logs / f"{name}.out").read_text(errors="replace")
        err = (self.logs / f"{name}.err").read_text(errors="replace")
        return out + err

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    processes = Processes(tmp_path / "logs")
    try:
        yield processes
    finally:
        processes.kill_all()


def wait_for_file(path: Path, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> str:
    """The first line written to ``path`` by ``proc`` (fails early if ``proc`` died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().endswith("\n"):
            return path.read_text().strip()
        if proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode} before writing {path}")
        time.sleep(0.05)
    raise AssertionError(f"{path} not written in {timeout}s")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def write_random_file(path: Path, size: int, seed: int = 7) -> str:
    """``size`` pseudo-random bytes (fast, reproducible); returns their sha256."""
    import numpy as np

    rng = np.random.default_rng(seed)
    digest = hashlib.sha256()
    with path.open("wb") as fh:
        left = size
        while left:
            block = rng.integers(0, 256, size=min(left, 8 << 20), dtype=np.uint8).tobytes()
            fh.write(block)
            digest.update(block)
            left -= len(block)
    return digest.hexdigest()


def big_model_card(
    home: Path, source: Path, sha256: str, size: int, model_id: str = "bigblob"
) -> None:
    """A user card for a "model" made of random bytes, sourced from a local file."""
    cards = home / "cards"
    cards.mkdir(parents=True, exist_ok=True)
    (cards / f"{model_id}.toml").write_text(
        f'id = "{model_id}"\ncapability = "chat"\nengine = "fake"\nformat = "fake"\n'
        f'[[files]]\nname = "weights.bin"\nsha256 = "{sha256}"\nsize = {size}\n'
        f'[[sources]]\ntype = "local"\npaths = {{ "weights.bin" = "{source}" }}\n'
    )


def send_raw(identity: object, ref: str, header: dict[str, object]) -> list[dict[str, object]]:
    """One hand-made request header on a fresh connection; every frame of the answer but pings."""
    from terminus.p2p.node import (
        EventLoopThread,
        bind_endpoint,
        dial,
        parse_node_ref,
        read_frame,
        write_frame,
    )

    loop = EventLoopThread()

    async def go() -> list[dict[str, object]]:
        endpoint = await bind_endpoint(identity, "127.0.0.1:0")
        connection = await dial(endpoint, parse_node_ref(ref))
        stream = await connection.open_bi()
        await write_frame(stream.send(), header)
        frames: list[dict[str, object]] = []
        while (frame := await read_frame(stream.recv())) is not None:
            if not frame.get("ping"):
                frames.append(frame)
            if frame.get("end") or "error" in frame:
                break
        connection.close(0, b"")
        await endpoint.close()
        return frames

    try:
        return loop.run(go(), timeout=30)
    finally:
        loop.stop()
