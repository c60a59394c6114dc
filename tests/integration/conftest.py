"""Real llama.cpp (xllamacpp) inference on the real SmolLM2-135M model.

One session-scoped client loads the model once and most tests share it, so the
whole suite stays fast on two CPU cores. Tests whose assertions depend on the
slots' history get a fresh client instead (see ``fresh_client``).

``TERMINUS_TEST_THREADS`` sets the llama.cpp threads per model (default 1): with
as many threads as cores, llama.cpp's spinning thread pool all but stops as soon
as anything else competes for the CPU (another test run, a build), while one
thread runs at full speed whatever else is going on.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from realmodel import load_smollm2, make_client

from terminus import Terminus
from terminus.types import ChatRequest


@pytest.fixture(scope="session")
def real_home(tmp_path_factory: pytest.TempPathFactory, smollm2_gguf: Path) -> Iterator[Path]:
    """A Terminus home shared by the session's SmolLM2 clients (the blob is copied once)."""
    home = tmp_path_factory.mktemp("terminus-real")
    yield home
    shutil.rmtree(home, ignore_errors=True)  # pytest keeps old temp dirs; this one is 100 MB


@pytest.fixture(scope="session")
def client(real_home: Path) -> Iterator[Terminus]:
    """SmolLM2 loaded once: context 1024 per slot, 4 slots."""
    terminus = make_client(real_home)
    load_smollm2(terminus)
    yield terminus
    terminus.close()


@pytest.fixture
def fresh_client(real_home: Path) -> Iterator[Callable[[], Terminus]]:
    """Another client with its own llama.cpp server (fresh slots), on the same home.

    Greedy output depends on what the slots computed before (a reused prompt
    prefix computed in a large batch can flip SmolLM2 from English to French),
    so tests that compare exact texts start from fresh slots.
    """
    made: list[Terminus] = []

    def make() -> Terminus:
        terminus = make_client(real_home)
        load_smollm2(terminus)
        made.append(terminus)
        return terminus

    yield make
    for terminus in made:
        terminus.close()


@pytest.fixture
def raw_chat(client: Terminus) -> Callable[[ChatRequest], dict[str, Any]]:
    """Run a request straight on the xllamacpp server (not streamed), bypassing Terminus."""

    def run(request: ChatRequest) -> dict[str, Any]:
        with client.manager.use(request.model) as model:
            body, _ = model.build_body(request)  # type: ignore[attr-defined]
            body = {k: v for k, v in body.items() if k != "stream_options"}
            body["stream"] = False
            result: dict[str, Any] = model.server.handle_chat_completions(body)  # type: ignore[attr-defined]
            return result

    return run
