"""Fixtures for the vision tests: fake cards (unit tests) and SmolLM2 with a real projector."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# The server tests' helpers (in-process app client, live `terminus serve`).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))

from fakecards import fake_card
from projector_kit import build_projector
from visionkit import VISION_MODEL, vision_client

from terminus import Terminus
from terminus.engines.fake import FakeEngine
from terminus.models.card import ModelCard


@pytest.fixture(autouse=True)
def reset_fake_engine() -> Iterator[None]:
    FakeEngine.calls.clear()
    FakeEngine.loads.clear()
    yield
    FakeEngine.calls.clear()
    FakeEngine.loads.clear()


@pytest.fixture
def make_fake_card(tmp_path: Path) -> Callable[..., ModelCard]:
    def make(card_id: str = "fake-chat", **kwargs: Any) -> ModelCard:
        return fake_card(tmp_path / "weights", card_id, **kwargs)

    return make


@pytest.fixture
def fake_client(make_fake_card: Callable[..., ModelCard]) -> Iterator[Terminus]:
    with Terminus(memory_budget="1G") as client:
        client.catalog.register(make_fake_card("fake-chat", context_length=64))
        yield client


@pytest.fixture(scope="session")
def colour_projector(tmp_path_factory: pytest.TempPathFactory, smollm2_gguf: Path) -> Path:
    """The globalmm-built projector for SmolLM2 (see projector_kit)."""
    return build_projector(smollm2_gguf, tmp_path_factory.mktemp("projector"))


@pytest.fixture(scope="session")
def vision_home(
    tmp_path_factory: pytest.TempPathFactory, smollm2_gguf: Path, colour_projector: Path
) -> Iterator[Path]:
    """A home where SmolLM2 + the projector were added as ``smollm2-eyes``."""
    home = tmp_path_factory.mktemp("vision-home")
    with Terminus(home=home, allow_download=False) as client:
        client.models.add(smollm2_gguf, model_id=VISION_MODEL, mmproj=colour_projector)
    yield home
    shutil.rmtree(home, ignore_errors=True)  # 100 MB of weights


@pytest.fixture(scope="session")
def eyes(vision_home: Path) -> Iterator[Terminus]:
    """SmolLM2 with its colour projector, loaded once."""
    client = vision_client(vision_home)
    yield client
    client.close()
