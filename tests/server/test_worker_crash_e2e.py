"""A llama.cpp worker killed mid-stream under a live ``terminus serve`` (official openai client)
and under ``terminus run``: the stream ends with an error, the host lives on, and the
model loads again for the next request."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import psutil
import pytest

pytestmark = pytest.mark.real

MODEL = "smollm2"
STORY = [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def workers_of(pid: int, within: float = 30.0) -> list[int]:
    """Pids of the llama.cpp workers under ``pid`` (waits for at least one)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = [
            child.pid
            for child in psutil.Process(pid).children(recursive=True)
            if "terminus.engines.llamacpp_worker" in " ".join(child.cmdline())
        ]
        if found:
            return found
        time.sleep(0.05)
    pytest.fail(f"no llama.cpp worker under process {pid}")


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERMINUS_")}
    env.update(TERMINUS_HOME=str(home), TERMINUS_OFFLINE="1", TERMINUS_MEMORY_BUDGET="2G")
    env["TERMINUS_THREADS"] = "1"
    return env


@pytest.fixture
def serve(tmp_path: Path, smollm2_gguf: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = _free_port()
    log = tmp_path / "serve.log"
    command = [
        sys.executable, "-m", "terminus.cli.main", "serve", "--port", str(port), "--model", MODEL,
        "--context-length", "512", "--parallel", "2", "--threads", "1",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=_env(tmp_path / "home"), stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield url, process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_server_survives_a_worker_crash_mid_stream(
    serve: tuple[str, subprocess.Popen[bytes]],
) -> None:
    url, process = serve
    (worker,) = workers_of(process.pid)
    with openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=60) as client:
        stream = client.chat.completions.create(
            model=MODEL,
            messages=STORY,
            max_tokens=400,
            temperature=0,
            stream=True,  # type: ignore[arg-type]
        )
        received = 0
        with pytest.raises(openai.APIError, match="worker"):
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    received += 1
                    if received == 3:
                        os.kill(worker, signal.SIGSEGV)
        assert 3 <= received < 400
        assert process.poll() is None
        assert httpx.get(f"{url}/health", timeout=5).status_code == 200
        answer = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "What is the capital of France?"}],
            max_tokens=20,
            temperature=0,
        )
        assert "Paris" in (answer.choices[0].message.content or "")
    assert workers_of(process.pid) != [worker]


def test_cli_run_reports_a_worker_crash_with_the_engine_exit_code(
    tmp_path: Path, smollm2_gguf: Path
) -> None:
    command = [
        sys.executable, "-m", "terminus.cli.main", "run", "-m", MODEL, "-n", "400",
        "Write a long story about a lighthouse keeper.",
    ]  # fmt: skip
    run = subprocess.Popen(
        command, env=_env(tmp_path / "home"), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert run.stdout is not None and run.stderr is not None
    (worker,) = workers_of(run.pid, within=90)
    run.stdout.read(8)  # generation has started
    os.kill(worker, signal.SIGKILL)
    _, err = run.communicate(timeout=60)
    run.stdout.close()
    run.stderr.close()
    assert run.returncode == 11, err.decode()
    assert b"worker" in err and b"SIGKILL" in err and b"Traceback" not in err
