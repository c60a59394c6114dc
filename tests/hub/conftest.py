"""A fake Hugging Face Hub per test (tests/hub_fixture.py), reached through HF_ENDPOINT."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hub_fixture import FakeHub


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeHub]:
    with FakeHub() as fake:
        monkeypatch.setenv("HF_ENDPOINT", fake.endpoint)
        monkeypatch.delenv("HF_TOKEN", raising=False)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        # a token saved by `hf auth login` on this machine must not leak into the tests
        monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
        yield fake
