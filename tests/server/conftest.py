"""Fixtures for the server tests: fake-engine apps driven in-process over ASGI."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from serverkit import LONG_REPLY, fake_card, fake_complete, running

from terminus.client.sync import Terminus
from terminus.engines.fake import FakeChatModel, FakeEngine
from terminus.server import ServerSettings, create_app


@pytest.fixture(autouse=True)
def reset_fake_engine() -> Iterator[None]:
    FakeEngine.calls.clear()
    FakeEngine.loads.clear()
    yield
    FakeEngine.calls.clear()
    FakeEngine.loads.clear()


@pytest.fixture
def text_capable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give fake models raw text completion for the test."""
    monkeypatch.setattr(FakeChatModel, "complete", fake_complete, raising=False)


@pytest.fixture
def fake_client(tmp_path: Path) -> Iterator[Terminus]:
    """A client (on the per-test home) with fake models registered.

    ``fake-chat`` echoes the last user message; ``fake-slow`` writes 400 words at
    10 ms each; ``fake-base`` is a base (completion) model; ``fake-embed`` makes
    32-dimension vectors (hashed bag of words).
    """
    weights = tmp_path / "weights"
    with Terminus(memory_budget="1G", allow_download=False) as client:
        client.catalog.register(
            fake_card(weights, "fake-chat", context_length=256, tool_arguments={"city": "Paris"})
        )
        client.catalog.register(
            fake_card(weights, "fake-slow", replies=[LONG_REPLY], token_delay_s=0.01)
        )
        client.catalog.register(fake_card(weights, "fake-base", capability="completion"))
        client.catalog.register(fake_card(weights, "fake-embed", capability="embed", dimensions=32))
        yield client


@pytest.fixture
def make_app(fake_client: Terminus) -> Any:
    def make(**settings: Any) -> FastAPI:
        return create_app(fake_client, ServerSettings(**settings))

    return make


@pytest.fixture
async def api(make_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with running(make_app()) as http:
        yield http
