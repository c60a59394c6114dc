"""Work started before the CLI's own imports, where a command surely needs it.

`terminus run` on this machine will load a model in a worker process. Starting that process
first lets its interpreter and llama.cpp import run on the other core while this process
imports the CLI (~0.3 s), instead of after. When the same model was run before, the worker
also starts *loading* it at once, with the settings that run recorded (``cli/run-hint.json``
in the home): the command adopts that worker only if it asks for exactly the same settings,
after the usual card and cache checks, and discards it otherwise. Only the standard library
and small Terminus modules are imported here; anything unusual in the arguments means "do
nothing" — the command then starts its worker as before.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from terminus.paths import NO_SERVER_ENV, RESIDENT_FILE, terminus_home

HINT_FILE = Path("cli") / "run-hint.json"

# the global options that take a value (see cli.main)
_VALUED = {"--home", "--memory-policy", "--memory-budget"}
# `run` options that send the request elsewhere, or print help and exit
_NOT_HERE = {"-h", "--help", "--peer", "--split"}


def main() -> None:
    """The `terminus` command: the early start first, then the CLI and its imports."""
    import sys

    prestart_for(sys.argv[1:])
    from terminus.cli.main import main as cli_main

    cli_main()


def prestart_for(argv: Sequence[str]) -> bool:
    """Start a spare llama.cpp worker when ``argv`` is a local `terminus run`; says whether."""
    home: str | None = None
    no_server = os.environ.get(NO_SERVER_ENV, "").lower() in ("1", "true", "yes", "on")
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        flag, _, inline = argv[i].partition("=")
        if flag == "--no-server":
            no_server = True
        if flag in _VALUED and not inline:
            i += 1
            if flag == "--home" and i < len(argv):
                home = argv[i]
        elif flag == "--home":
            home = inline
        i += 1
    if i >= len(argv) or argv[i] != "run":
        return False
    rest = argv[i + 1 :]
    if any(arg.partition("=")[0] in _NOT_HERE for arg in rest):
        return False
    root = terminus_home(home)
    if not no_server and (root / RESIDENT_FILE).exists():
        return False  # a resident server answers
    from terminus.engines.llamacpp_proxy import prestart_worker

    prestart_worker(read_hint(root, hint_key(_model_arg(rest))))
    return True


def _model_arg(args: Sequence[str]) -> str | None:
    for j, arg in enumerate(args):
        flag, eq, inline = arg.partition("=")
        if flag in ("-m", "--model"):
            return inline if eq else (args[j + 1] if j + 1 < len(args) else None)
    return None


def hint_key(model_arg: str | None) -> dict[str, Any]:
    """What decides which model `terminus run` loads before its options are parsed."""
    return {
        "model": model_arg,
        "env_model": os.environ.get("TERMINUS_MODEL"),
        "env_threads": os.environ.get("TERMINUS_THREADS"),
    }


def read_hint(home: Path, key: dict[str, Any]) -> list[Any] | None:
    """The load settings a run with ``key`` used last time, if its model file is unchanged."""
    from terminus.engines.llamacpp_params import assignments_from_json

    try:
        hint = json.loads((home / HINT_FILE).read_text(encoding="utf-8"))
        if hint.get("key") != key:
            return None
        stat = Path(hint["file"]).stat()
        if [stat.st_size, stat.st_mtime_ns] != hint["file_stat"]:
            return None
        assignments = assignments_from_json(hint["assignments"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    # a key of its own for the worker's loopback HTTP port (keys are never written down)
    token = base64.urlsafe_b64encode(os.urandom(24)).rstrip(b"=").decode()  # secrets' way
    return [*assignments, ("api_keys", [token])]


def write_hint(home: Path, key: dict[str, Any], assignments: list[Any]) -> None:
    """Record what this run loaded; never fails the command."""
    from terminus.engines.llamacpp_params import assignments_to_json

    with contextlib.suppress(OSError, ValueError, StopIteration):
        path = next(str(v) for k, v in assignments if k == "model.path")
        stat = Path(path).stat()
        hint = {
            "key": key,
            "file": path,
            "file_stat": [stat.st_size, stat.st_mtime_ns],
            "assignments": assignments_to_json([a for a in assignments if a[0] != "api_keys"]),
        }
        target = home / HINT_FILE
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        staging.write_text(json.dumps(hint), encoding="utf-8")
        os.replace(staging, target)
