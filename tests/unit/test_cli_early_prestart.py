"""`terminus run` starts its worker before the CLI's imports; nothing else does."""

from __future__ import annotations

from pathlib import Path

import pytest

from terminus.cli import early
from terminus.engines import llamacpp_proxy


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    monkeypatch.setattr(llamacpp_proxy, "prestart_worker", lambda hint=None: calls.append(1))
    monkeypatch.delenv("TERMINUS_NO_SERVER", raising=False)
    return calls


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "Hi"],
        ["--offline", "run", "-m", "qwen", "Hi"],
        ["--memory-budget", "4G", "--home", "/tmp/nowhere-x", "run", "Hi"],
        ["--memory-policy=warn", "run", "--max-tokens", "8", "Hi"],
    ],
)
def test_a_local_run_prestarts(argv: list[str], started: list[int]) -> None:
    assert early.prestart_for(argv) and started == [1]


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--help"],
        ["chat"],
        ["serve", "-m", "run"],
        ["--memory-budget", "run", "chat"],  # "run" is the budget's value here
        ["run", "--help"],
        ["run", "--peer", "terminus:node/ab", "Hi"],
        ["run", "--split=terminus:node/ab", "Hi"],
    ],
)
def test_anything_else_does_not(argv: list[str], started: list[int]) -> None:
    assert not early.prestart_for(argv) and started == []


def test_a_resident_server_answers_instead(
    tmp_path: Path, started: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    resident = tmp_path / "server" / "resident.json"
    resident.parent.mkdir()
    resident.write_text("{}")
    assert not early.prestart_for(["--home", str(tmp_path), "run", "Hi"])
    assert early.prestart_for(["--home", str(tmp_path), "--no-server", "run", "Hi"])
    monkeypatch.setenv("TERMINUS_NO_SERVER", "1")
    assert early.prestart_for(["--home", str(tmp_path), "run", "Hi"])
    assert started == [1, 1]
