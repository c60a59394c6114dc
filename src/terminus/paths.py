"""Where Terminus keeps its state (cache, cards, identity)."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "TERMINUS_HOME"
#: Set to run in-process even when a resident server (``serve --detach``) is running.
NO_SERVER_ENV = "TERMINUS_NO_SERVER"
#: Where a resident server announces itself, under the home.
RESIDENT_FILE = Path("server") / "resident.json"


def terminus_home(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``explicit`` > ``$TERMINUS_HOME`` > ``$XDG_CACHE_HOME/terminus`` > ``~/.cache/terminus``."""
    if explicit is not None:
        return Path(explicit).expanduser()
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "terminus"
