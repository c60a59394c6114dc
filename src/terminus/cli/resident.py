"""Starting and stopping the resident server: ``terminus serve --detach`` / ``--stop``.

The detached server is ``terminus serve`` in its own session, its output appended
to ``TERMINUS_HOME/server/server.log``; once it listens it writes
``TERMINUS_HOME/server/resident.json`` (pid, host, port), which the CLI reads to
reuse it. API keys reach it through the environment, never its command line.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
import httpx

from terminus.transports.resident import (
    Resident,
    clear_resident,
    find_resident,
    log_path,
    pid_alive,
    read_resident,
)

START_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 15.0

#: ``serve`` options passed on to the detached server as they were given.
_FORWARDED = {
    "host": "--host",
    "port": "--port",
    "context_length": "--context-length",
    "parallel": "--parallel",
    "threads": "--threads",
    "max_concurrent": "--max-concurrent",
    "max_body_bytes": "--max-body-bytes",
    "keep_alive": "--keep-alive",
    "api_keys_file": "--api-keys-file",
}


def serve_command(params: Mapping[str, Any]) -> list[str]:
    """The command line of the detached ``terminus serve`` (keys excepted)."""
    command = [sys.executable, "-m", "terminus.cli.main", "serve", "--resident"]
    for name, flag in _FORWARDED.items():
        value = params.get(name)
        if value is not None:
            command += [flag, str(value)]
    for model in params.get("models") or ():
        command += ["--model", model]
    for origin in params.get("cors_origins") or ():
        command += ["--cors-origin", origin]
    for spec in params.get("tool_servers") or ():
        command += ["--mcp", spec]
    if params.get("no_access_log"):
        command.append("--no-access-log")
    if params.get("allow_image_urls"):
        command.append("--allow-image-urls")
    return command


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def detach(home: Path, params: Mapping[str, Any], env: Mapping[str, str]) -> Resident:
    """Start the resident server and wait until it answers (and its models are in)."""
    running = find_resident(home)
    if running is not None:
        raise click.ClickException(
            f"a resident server already runs for {home} (pid {running.pid}, {running.url}); "
            "stop it with `terminus serve --stop`"
        )
    log = log_path(home)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(
            serve_command(params),
            env={**env, "TERMINUS_HOME": str(home)},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the shell's Ctrl-C or hangup does not reach it
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise click.ClickException(
                f"the server exited with status {process.returncode}; its log ({log}):\n"
                + _log_tail(log)
            )
        resident = find_resident(home, timeout=0.5)
        if resident is not None and resident.pid == process.pid and _ready(resident, env):
            return resident
        time.sleep(0.2)
    process.terminate()
    raise click.ClickException(f"the server did not start in {START_TIMEOUT_S:.0f} s; see {log}")


def _ready(resident: Resident, env: Mapping[str, str]) -> bool:
    """Whether its preloaded models are in (a failed preload stops the wait too)."""
    try:
        reply = httpx.get(f"{resident.url}/ready", timeout=1.0)
    except httpx.HTTPError:
        return False
    if reply.status_code == 200:
        return True
    if reply.json().get("status") == "failed":
        raise click.ClickException(f"the server started but a model failed: {reply.text}")
    return False


def stop_server(home: Path) -> Resident:
    """Stop the resident server of ``home`` (SIGTERM, then SIGKILL after a grace period)."""
    resident = read_resident(home)
    if resident is None or not pid_alive(resident.pid):
        if resident is not None:
            clear_resident(home, resident.pid)
        raise click.ClickException(f"no resident server is running for {home}")
    if find_resident(home) is None:
        raise click.ClickException(
            f"pid {resident.pid} is not this home's Terminus server; not stopping it "
            f"(remove {home / 'server' / 'resident.json'} if it is stale)"
        )
    os.kill(resident.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while pid_alive(resident.pid) and time.monotonic() < deadline:
        _reap(resident.pid)
        time.sleep(0.1)
    if pid_alive(resident.pid):
        os.kill(resident.pid, signal.SIGKILL)
    clear_resident(home, resident.pid)
    return resident


def _reap(pid: int) -> None:
    """Collect the exit status when the server is our own child (same process started it)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
