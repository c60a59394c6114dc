"""Shared by the vision tests (a module of its own: every test folder has a conftest)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from terminus import Terminus

VISION_MODEL = "smollm2-eyes"


def vision_client(home: Path, **load: Any) -> Terminus:
    client = Terminus(home=home, allow_download=False, memory_budget="2G")
    load.setdefault("context_length", 1024)
    load.setdefault("parallel", 2)
    load.setdefault("threads", 1)
    client.load_model(VISION_MODEL, **load)
    return client
