"""Fixtures for unit tests: fake model cards whose weights really go through the cache."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fakecards import fake_card

from terminus.client.sync import Terminus
from terminus.engines.fake import FakeEngine
from terminus.models.card import ModelCard

FakeCardFactory = Callable[..., ModelCard]


@pytest.fixture(autouse=True)
def reset_fake_engine() -> Iterator[None]:
    """FakeEngine records calls and loads in class-level lists; start each test empty."""
    FakeEngine.calls.clear()
    FakeEngine.loads.clear()
    yield
    FakeEngine.calls.clear()
    FakeEngine.loads.clear()


@pytest.fixture
def make_fake_card(tmp_path: Path) -> FakeCardFactory:
    def make(card_id: str = "fake-chat", **kwargs: Any) -> ModelCard:
        return fake_card(tmp_path / "weights", card_id, **kwargs)

    return make


@pytest.fixture
def client() -> Iterator[Terminus]:
    """A client on the per-test home, with a generous memory budget."""
    with Terminus(memory_budget="1G") as t:
        yield t


@pytest.fixture
def fake_client(client: Terminus, make_fake_card: FakeCardFactory) -> Terminus:
    """A client with ``fake-chat`` (echoes the last user message) registered."""
    client.catalog.register(
        make_fake_card("fake-chat", context_length=64, tool_arguments={"city": "Paris"})
    )
    return client
