"""The resident-server commands without a server: argument checks, messages, stale files."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from click.testing import CliRunner

from terminus.cli.main import cli
from terminus.cli.resident import serve_command
from terminus.transports.resident import Resident, find_resident, read_resident, write_resident


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_ps_and_stop_without_a_server(isolated_home: Path) -> None:
    code, _, err = invoke("ps")
    assert code == 1 and "no resident server is running" in err
    code, _, err = invoke("stop", "smollm2")
    assert code == 1 and "no resident server is running" in err
    code, _, err = invoke("stop", "--server")
    assert code == 1 and "no resident server" in err
    code, _, err = invoke("serve", "--stop")
    assert code == 1 and "no resident server" in err


def test_stop_needs_a_model_or_server(isolated_home: Path) -> None:
    assert invoke("stop")[0] == 2
    code, _, err = invoke("stop", "smollm2", "--server")
    assert code == 2 and "not both" in err


def test_bad_keep_alive_is_a_usage_error(isolated_home: Path) -> None:
    code, _, err = invoke("serve", "--keep-alive", "soon")
    assert code == 2 and "keep-alive" in err and "not a duration" in err


def test_a_stale_resident_file_is_ignored(isolated_home: Path) -> None:
    dead = Resident(pid=2**22 + 12345, host="127.0.0.1", port=1, home=str(isolated_home))
    write_resident(isolated_home, dead)
    assert read_resident(isolated_home) == dead
    assert find_resident(isolated_home) is None  # no such process
    alive_elsewhere = Resident(pid=os.getpid(), host="10.1.2.3", port=1, home=str(isolated_home))
    write_resident(isolated_home, alive_elsewhere)
    assert find_resident(isolated_home) is None  # not loopback
    nobody = Resident(pid=os.getpid(), host="127.0.0.1", port=1, home=str(isolated_home))
    write_resident(isolated_home, nobody)
    assert find_resident(isolated_home, timeout=0.5) is None  # nothing answers there
    (isolated_home / "server" / "resident.json").write_text("{not json")
    assert read_resident(isolated_home) is None
    code, _, err = invoke("ps")  # a broken file is as good as none
    assert code == 1 and "no resident server" in err


def test_serve_command_forwards_options_but_not_keys() -> None:
    params = {
        "host": "127.0.0.1",
        "port": 8123,
        "models": ("smollm2", "minilm"),
        "keep_alive": "10m",
        "threads": None,
        "api_keys": ("secret",),
        "no_access_log": True,
    }
    command = serve_command(params)
    assert command[:5] == [sys.executable, "-m", "terminus.cli.main", "serve", "--resident"]
    assert command[5:] == [
        "--host", "127.0.0.1", "--port", "8123", "--keep-alive", "10m",
        "--model", "smollm2", "--model", "minilm", "--no-access-log",
    ]  # fmt: skip
    assert "secret" not in json.dumps(command)
