"""The CLI and a resident server: ``serve --detach``, commands answered by its warm model,
``ps``, ``stop``, ``serve --stop``, and the in-process fallback (real SmolLM2 and MiniLM)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from liveserver import THREADS, free_port, terminus

from terminus.transports.resident import pid_alive, read_resident

pytestmark = pytest.mark.real

QUESTION = "What is the capital of France?"
RUN = ("run", "--temperature", "0", "--seed", "1", "--max-tokens", "16", QUESTION)


def _transport_calls(home: Path, op: str) -> int:
    log = (home / "server" / "server.log").read_text()
    return sum(
        1
        for line in log.splitlines()
        if line.startswith("{") and json.loads(line).get("path") == f"/terminus/v1/transport/{op}"
    )


@pytest.fixture
def home(tmp_path_factory: pytest.TempPathFactory, smollm2_gguf: Path) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("resident-home")
    yield path
    resident = read_resident(path)
    if resident is not None and pid_alive(resident.pid):  # a failed test left it running
        terminus(path, "serve", "--stop")
    shutil.rmtree(path, ignore_errors=True)


def test_cli_reuses_a_detached_server_then_falls_back(home: Path) -> None:
    in_process = terminus(home, *RUN)
    assert in_process.returncode == 0, in_process.stderr
    assert "Paris" in in_process.stdout
    assert not (home / "server" / "resident.json").exists()
    no_server = terminus(home, "ps")
    assert no_server.returncode == 1 and "no resident server" in no_server.stderr

    port = free_port()
    started = terminus(
        home, "serve", "--detach", "--port", str(port), "--model", "smollm2",
        "--threads", THREADS, "--context-length", "1024", "--parallel", "2", "--keep-alive", "-1",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    resident = read_resident(home)
    assert resident is not None and resident.port == port and pid_alive(resident.pid)
    assert f"pid {resident.pid}" in started.stderr

    again = terminus(home, "serve", "--detach", "--port", str(free_port()))
    assert again.returncode == 1 and "already runs" in again.stderr

    served = terminus(home, *RUN)
    assert served.returncode == 0, served.stderr
    assert served.stdout == in_process.stdout  # greedy: the same answer, from the warm model
    assert _transport_calls(home, "chat") == 1

    local_vectors = terminus(home, "--no-server", "embed", "--json", "a cat")
    served_vectors = terminus(home, "embed", "--json", "a cat")
    assert served_vectors.returncode == 0, served_vectors.stderr
    assert _transport_calls(home, "embed") == 1
    local = json.loads(local_vectors.stdout)
    remote = json.loads(served_vectors.stdout)
    assert _close(local, remote)

    opted_out = terminus(home, "--no-server", *RUN)
    assert opted_out.returncode == 0 and "Paris" in opted_out.stdout
    assert _transport_calls(home, "chat") == 1  # it did not go to the server

    listed = terminus(home, "ps")
    assert listed.returncode == 0, listed.stderr
    assert "smollm2-135m-instruct" in listed.stdout and "forever" in listed.stdout
    table = json.loads(terminus(home, "ps", "--json").stdout)
    assert {m["id"] for m in table["models"]} == {"smollm2-135m-instruct", "all-minilm-l6-v2"}

    assert terminus(home, "stop", "smollm2").stdout.strip() == "unloaded smollm2"
    assert "smollm2" not in terminus(home, "ps").stdout
    assert "was not loaded" in terminus(home, "stop", "smollm2").stdout

    stopped = terminus(home, "serve", "--stop")
    assert stopped.returncode == 0, stopped.stderr
    assert not pid_alive(resident.pid) and read_resident(home) is None

    fallback = terminus(home, *RUN)
    assert fallback.returncode == 0 and fallback.stdout == in_process.stdout
    assert terminus(home, "stop", "--server").returncode == 1


def _close(a: object, b: object) -> bool:
    """Nested lists of floats equal to 1e-5."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) < 1e-5
    return a == b
