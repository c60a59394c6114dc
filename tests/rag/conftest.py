"""Fixtures for the RAG tests: a client with fake embedding and chat models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from ragkit import EMBED, rag_cards, save_cards

from terminus.client.sync import Terminus
from terminus.rag import Workspace


@pytest.fixture
def cards_saved(isolated_home: Path, tmp_path: Path) -> Path:
    """The fake cards saved in the test's Terminus home (so every new client sees them)."""
    save_cards(isolated_home, rag_cards(tmp_path / "weights"))
    return isolated_home


@pytest.fixture
def client(cards_saved: Path) -> Iterator[Terminus]:
    with Terminus(memory_budget="1G") as t:
        yield t


@pytest.fixture
def ws(client: Terminus) -> Iterator[Workspace]:
    with Workspace(client, "notes", model=EMBED) as workspace:
        yield workspace
