"""Fixtures for unit tests: fake model cards whose weights really go through the cache."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from terminus.client.sync import Terminus
from terminus.engines.fake import FakeEngine
from terminus.models.card import LocalSource, ModelCard, ModelFile

FakeCardFactory = Callable[..., ModelCard]


def fake_card(
    directory: Path,
    card_id: str = "fake-chat",
    *,
    capability: str = "chat",
    payload: bytes | None = None,
    aliases: tuple[str, ...] = (),
    **defaults: Any,
) -> ModelCard:
    """A card for the fake engine whose one file is a real local file."""
    payload = payload if payload is not None else f"weights of {card_id}\n".encode() * 64
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{card_id}.bin"
    path.write_bytes(payload)
    return ModelCard(
        id=card_id,
        aliases=aliases,
        capability=capability,  # type: ignore[arg-type]
        engine="fake",
        format="fake",
        files=(
            ModelFile(
                name="weights.bin", sha256=hashlib.sha256(payload).hexdigest(), size=len(payload)
            ),
        ),
        sources=(LocalSource(paths={"weights.bin": str(path)}),),
        defaults=defaults,
    )


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
