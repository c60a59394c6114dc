"""Work started before the CLI's own imports, where a command surely needs it.

`terminus run` on this machine will load a model in a worker process. Starting that process
first lets its interpreter and llama.cpp import run on the other core while this process
imports the CLI (~0.3 s), instead of after. Only the standard library and two small Terminus
modules are imported here; anything unusual in the arguments means "do nothing" — the
command itself then starts the worker as before.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from terminus.paths import NO_SERVER_ENV, RESIDENT_FILE, terminus_home

# the global options that take a value (see cli.main)
_VALUED = {"--home", "--memory-policy", "--memory-budget"}
# `run` options that send the request elsewhere, or print help and exit
_NOT_HERE = {"-h", "--help", "--peer", "--split"}


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
    if any(arg.partition("=")[0] in _NOT_HERE for arg in argv[i + 1 :]):
        return False
    if not no_server and (terminus_home(home) / RESIDENT_FILE).exists():
        return False  # a resident server answers
    from terminus.engines.llamacpp_proxy import prestart_worker

    prestart_worker()
    return True
