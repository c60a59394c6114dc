"""A client keeps the token scorers of the two models scored last, and frees them on close."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from terminus import Terminus
from terminus.client import scoring
from terminus.models.cache import ModelFiles


class FakeScorer:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.closed = False

    def tokenize(self, text: str, *, add_special: bool = True) -> list[int]:
        return [len(text)]

    def close(self) -> None:
        self.closed = True


MODELS = ("smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct")


def test_two_scorers_are_kept_and_the_least_recent_is_freed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[FakeScorer] = []

    def open_scorer(path: Any) -> FakeScorer:
        opened.append(FakeScorer(Path(path)))
        return opened[-1]

    monkeypatch.setattr(scoring, "_open_scorer", open_scorer)
    client = Terminus(home=tmp_path)
    monkeypatch.setattr(
        client.manager,
        "ensure_files",
        lambda card: ModelFiles(tmp_path, {"m": tmp_path / f"{card.id}.gguf"}),
    )
    first, second, third = MODELS
    client.tokenize("a", model=first)
    client.tokenize("a", model=second)
    client.tokenize("a", model=first)  # used again: now the most recent
    assert len(opened) == 2 and not any(s.closed for s in opened)
    client.tokenize("a", model=third)  # a third model: the least recent (second) is freed
    assert [s.closed for s in opened] == [False, True, False]
    client.tokenize("a", model=first)
    assert len(opened) == 3  # still kept: not opened again
    client.close()
    assert all(s.closed for s in opened)  # closing the client frees the rest
    assert scoring.KEEP_SCORERS == 2
