"""Keep-alive: Ollama's duration syntax, and the manager unloading idle models on time."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from terminus.errors import InvalidParameterError
from terminus.models.cache import ModelCache
from terminus.models.card import ModelCard
from terminus.models.catalog import Catalog
from terminus.runtime.keepalive import describe_keep_alive, parse_keep_alive
from terminus.runtime.manager import ModelManager
from terminus.types import CancelToken, ChatRequest, Message

FakeCardFactory = Callable[..., ModelCard]


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (300, 300.0), (0, 0.0), (-1, math.inf), ("-1", math.inf), ("5m", 300.0),
        ("1h30m", 5400.0), ("90s", 90.0), ("1.5s", 1.5), ("250ms", 0.25), ("-5m", math.inf),
        ("300", 300.0), (None, None),
    ],
)  # fmt: skip
def test_parse_keep_alive(value: object, seconds: float | None) -> None:
    assert parse_keep_alive(value) == seconds  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["soon", "5 minutes", "m5", "", "1x", True, float("nan")])
def test_parse_keep_alive_refuses(value: object) -> None:
    with pytest.raises(InvalidParameterError):
        parse_keep_alive(value)  # type: ignore[arg-type]


def test_describe_keep_alive() -> None:
    assert [describe_keep_alive(s) for s in (math.inf, 0, 300, 5400, 90, 1.5)] == [
        "forever", "0s", "5m", "1h30m", "1m30s", "1.5s",
    ]  # fmt: skip


def _manager(tmp_path: Path, make_fake_card: FakeCardFactory) -> ModelManager:
    catalog = Catalog(include_builtin=False)
    catalog.register(make_fake_card("fake-a", memory_bytes=1000))
    catalog.register(make_fake_card("fake-b", memory_bytes=1000))
    return ModelManager(catalog, ModelCache(tmp_path / "home"), budget_bytes=10**9)


def _wait_unloaded(manager: ModelManager, model: str, timeout: float = 5.0) -> float:
    started = time.monotonic()
    while model in [m.id for m in manager.loaded()]:
        assert time.monotonic() - started < timeout, f"{model} is still loaded"
        time.sleep(0.02)
    return time.monotonic() - started


def test_idle_model_unloads_after_its_keep_alive(
    tmp_path: Path, make_fake_card: FakeCardFactory
) -> None:
    manager = _manager(tmp_path, make_fake_card)
    manager.set_keep_alive("fake-a", 0.3)
    manager.load("fake-a")
    manager.load("fake-b")  # the default: kept for ever
    [info_a] = [m for m in manager.loaded() if m.id == "fake-a"]
    assert info_a.keep_alive_s == 0.3 and info_a.expires_in_s is not None
    assert 0 < info_a.expires_in_s <= 0.3
    waited = _wait_unloaded(manager, "fake-a")
    assert waited >= 0.2
    [info_b] = manager.loaded()
    assert info_b.id == "fake-b" and info_b.keep_alive_s is None and info_b.expires_in_s is None
    manager.unload_all()


def test_busy_model_is_not_unloaded_and_zero_unloads_after_the_request(
    tmp_path: Path, make_fake_card: FakeCardFactory
) -> None:
    manager = _manager(tmp_path, make_fake_card)
    manager.default_keep_alive_s = 0.0
    request = ChatRequest(model="fake-a", messages=(Message(role="user", content="hi"),))
    events = manager.chat(request, CancelToken())
    next(events)  # the model is pinned while the stream runs
    time.sleep(0.2)
    assert [m.id for m in manager.loaded()] == ["fake-a"]
    assert manager.loaded()[0].expires_in_s is None  # busy: no expiry
    list(events)
    _wait_unloaded(manager, "fake-a")


def test_touch_restarts_the_clock_and_sets_a_new_keep_alive(
    tmp_path: Path, make_fake_card: FakeCardFactory
) -> None:
    manager = _manager(tmp_path, make_fake_card)
    manager.default_keep_alive_s = 60
    manager.load("fake-a")
    assert manager.expires_in("fake-a") == pytest.approx(60, abs=1)
    manager.touch("fake-a", keep_alive_s=-1)  # Ollama's -1: for ever
    assert manager.expires_in("fake-a") is None and manager.loaded()[0].keep_alive_s is None
    manager.touch("fake-a", keep_alive_s=0.1)
    _wait_unloaded(manager, "fake-a")
    manager.load("fake-a")  # a later load keeps the model's own keep-alive
    _wait_unloaded(manager, "fake-a")
    manager.set_keep_alive("fake-a", None)  # back to the default
    manager.load("fake-a")
    assert manager.expires_in("fake-a") == pytest.approx(60, abs=1)
    manager.unload_all()
