"""Helpers shared by the real-model integration tests (imported by conftest and the tests)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from terminus import Terminus

MODEL = "smollm2-135m-instruct"
CONTEXT = 1024
PARALLEL = 4
#: Far above what SmolLM2 needs (~260 MiB), and independent of TERMINUS_MEMORY_BUDGET.
BUDGET = "2G"


#: Greedy decoding with a fixed seed: the output is a function of the prompt (and slot history).
GREEDY: dict[str, Any] = {"temperature": 0.0, "seed": 42}


def llama_threads() -> int:
    """``TERMINUS_TEST_THREADS``, default 1 (see conftest's docstring)."""
    return int(os.environ.get("TERMINUS_TEST_THREADS", "1"))


def make_client(home: Path, **kwargs: Any) -> Terminus:
    """A client that never downloads (the weights come from the installed package)."""
    kwargs.setdefault("memory_budget", BUDGET)
    kwargs.setdefault("memory_policy", "refuse")
    return Terminus(home=home, allow_download=False, **kwargs)


def load_smollm2(client: Terminus, **options: Any) -> None:
    options.setdefault("context_length", CONTEXT)
    options.setdefault("parallel", PARALLEL)
    options.setdefault("threads", llama_threads())
    client.load_model(MODEL, **options)


def wait_idle(client: Terminus, model: str = MODEL, timeout: float = 5.0) -> bool:
    """True once no request holds the model (its slot was released)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        infos = [m for m in client.loaded_models() if m.id == model]
        if infos and infos[0].active_requests == 0:
            return True
        time.sleep(0.01)
    return False
