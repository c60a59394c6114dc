"""ModelManager: loading once, LRU eviction under a budget, pinning, memory policies."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from terminus.engines.base import LoadOptions
from terminus.engines.fake import FakeChatModel, FakeEngine
from terminus.errors import InsufficientMemoryError, InvalidParameterError, ModelBusyError
from terminus.models.cache import ModelCache
from terminus.models.card import ModelCard
from terminus.models.catalog import Catalog
from terminus.runtime.manager import ModelManager
from terminus.runtime.memory import (
    check_fit,
    format_size,
    parse_size,
    resolve_budget,
    resolve_policy,
)
from terminus.types import CancelToken, ChatRequest, ContentDelta, Done, Message

FakeCardFactory = Callable[..., ModelCard]
MB = 1_000_000


def _manager(
    tmp_path: Path,
    make_fake_card: FakeCardFactory,
    sizes: dict[str, int],
    *,
    budget: int = 2 * MB,
    policy: str = "refuse",
    **defaults: object,
) -> ModelManager:
    catalog = Catalog(include_builtin=False)
    for card_id, size in sizes.items():
        catalog.register(make_fake_card(card_id, memory_bytes=size, **defaults))
    return ModelManager(
        catalog,
        ModelCache(tmp_path / "home"),
        budget_bytes=budget,
        memory_policy=policy,  # type: ignore[arg-type]
    )


def _model(manager: ModelManager, name: str) -> FakeChatModel:
    with manager.use(name) as model:
        assert isinstance(model, FakeChatModel)
        return model


def _loaded(manager: ModelManager) -> list[str]:
    return [m.id for m in manager.loaded()]


def _request(model: str, text: str = "hello world") -> ChatRequest:
    return ChatRequest(model=model, messages=(Message(role="user", content=text),))


@pytest.fixture
def abc(tmp_path: Path, make_fake_card: FakeCardFactory) -> ModelManager:
    """Three 1 MB models under a 2 MB budget."""
    return _manager(tmp_path, make_fake_card, {"a": MB, "b": MB, "c": MB})


# --- LRU eviction ----------------------------------------------------------------------


def test_third_model_evicts_the_least_recently_used(abc: ModelManager) -> None:
    a, b = _model(abc, "a"), _model(abc, "b")
    assert _loaded(abc) == ["a", "b"] and abc.used_bytes() == 2 * MB
    c = _model(abc, "c")
    assert _loaded(abc) == ["b", "c"]
    assert a.closed and not b.closed and not c.closed
    assert abc.used_bytes() == 2 * MB
    assert FakeEngine.loads == ["a", "b", "c"]


def test_using_a_model_makes_it_recent(abc: ModelManager) -> None:
    a, b = _model(abc, "a"), _model(abc, "b")
    abc.load("a")  # touch a: b is now the oldest
    _model(abc, "c")
    assert sorted(_loaded(abc)) == ["a", "c"]
    assert b.closed and not a.closed


def test_reloading_an_evicted_model_loads_it_again(abc: ModelManager) -> None:
    for name in ("a", "b", "c", "a"):
        abc.load(name)
    assert FakeEngine.loads == ["a", "b", "c", "a"]
    assert sorted(_loaded(abc)) == ["a", "c"]


def test_a_model_in_use_is_never_evicted(abc: ModelManager) -> None:
    with abc.use("a") as a:
        b = _model(abc, "b")
        _model(abc, "c")  # b is idle, a is busy: b goes
        assert sorted(_loaded(abc)) == ["a", "c"]
        assert b.closed and not a.closed  # type: ignore[attr-defined]
    assert abc.loaded()[0].active_requests == 0


def test_a_model_mid_stream_is_never_evicted(abc: ModelManager) -> None:
    stream = abc.chat(_request("a"), CancelToken())
    assert isinstance(next(stream), ContentDelta)  # "a" is now serving a request
    assert {m.id: m.active_requests for m in abc.loaded()} == {"a": 1}
    abc.load("b")
    abc.load("c")  # evicts b, the only idle model
    assert sorted(_loaded(abc)) == ["a", "c"]
    events = list(stream)
    assert isinstance(events[-1], Done)
    assert {m.id: m.active_requests for m in abc.loaded()} == {"a": 0, "c": 0}


def test_refuse_when_nothing_idle_can_be_evicted(abc: ModelManager) -> None:
    with abc.use("a"), abc.use("b"):
        with pytest.raises(InsufficientMemoryError) as info:
            abc.load("c")
        assert isinstance(info.value, MemoryError)
    assert _loaded(abc) == ["a", "b"]
    assert FakeEngine.loads == ["a", "b"]


def test_refused_load_keeps_idle_models_when_eviction_cannot_help(
    tmp_path: Path, make_fake_card: FakeCardFactory
) -> None:
    manager = _manager(tmp_path, make_fake_card, {"idle": MB // 2, "busy": MB + MB // 2, "new": MB})
    idle = _model(manager, "idle")
    with manager.use("busy"), pytest.raises(InsufficientMemoryError):
        manager.load("new")  # busy 1.5 MB + new 1 MB > 2 MB whatever is evicted
    assert "new" not in _loaded(manager)
    assert "idle" in _loaded(manager) and not idle.closed


def test_model_bigger_than_the_budget(tmp_path: Path, make_fake_card: FakeCardFactory) -> None:
    manager = _manager(tmp_path, make_fake_card, {"a": MB, "huge": 3 * MB})
    a = _model(manager, "a")
    with pytest.raises(InsufficientMemoryError, match="budget"):
        manager.load("huge")
    assert _loaded(manager) == ["a"] and not a.closed
    assert FakeEngine.loads == ["a"]


def test_policy_warn_loads_over_the_budget(
    tmp_path: Path, make_fake_card: FakeCardFactory, caplog: pytest.LogCaptureFixture
) -> None:
    manager = _manager(tmp_path, make_fake_card, {"a": MB, "b": MB, "c": MB}, policy="warn")
    with manager.use("a"), manager.use("b"), caplog.at_level(logging.WARNING, "terminus"):
        manager.load("c")
    assert sorted(_loaded(manager)) == ["a", "b", "c"]
    assert manager.used_bytes() == 3 * MB


def test_policy_warn_logs_a_warning(
    tmp_path: Path, make_fake_card: FakeCardFactory, caplog: pytest.LogCaptureFixture
) -> None:
    manager = _manager(tmp_path, make_fake_card, {"a": MB, "b": MB, "c": MB}, policy="warn")
    with manager.use("a"), manager.use("b"), caplog.at_level(logging.WARNING, "terminus"):
        manager.load("c")
    assert any(r.levelno == logging.WARNING and "c" in r.getMessage() for r in caplog.records)


def test_policy_warn_still_evicts_idle_models_first(
    tmp_path: Path, make_fake_card: FakeCardFactory
) -> None:
    manager = _manager(tmp_path, make_fake_card, {"a": MB, "b": MB, "c": MB}, policy="warn")
    a = _model(manager, "a")
    _model(manager, "b")
    manager.load("c")
    assert sorted(_loaded(manager)) == ["b", "c"] and a.closed


def test_policy_warn_loads_a_model_bigger_than_the_budget(
    tmp_path: Path, make_fake_card: FakeCardFactory
) -> None:
    manager = _manager(tmp_path, make_fake_card, {"huge": 3 * MB}, policy="warn")
    manager.load("huge")
    assert _loaded(manager) == ["huge"]


def test_policy_off_loads_anyway_silently(
    tmp_path: Path, make_fake_card: FakeCardFactory, caplog: pytest.LogCaptureFixture
) -> None:
    manager = _manager(tmp_path, make_fake_card, {"a": MB, "b": MB, "huge": 3 * MB}, policy="off")
    with manager.use("a"), manager.use("b"), caplog.at_level(logging.DEBUG, "terminus"):
        manager.load("huge")
    assert sorted(_loaded(manager)) == ["a", "b", "huge"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# --- check_fit against free system memory ------------------------------------------------


def test_check_fit_refuse() -> None:
    check_fit("m", 800, "refuse", available=1000)  # 900 usable after 10 % headroom
    with pytest.raises(InsufficientMemoryError) as info:
        check_fit("m", 950, "refuse", available=1000)
    assert info.value.hint and "warn" in info.value.hint


def test_check_fit_warn(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "terminus.runtime"):
        check_fit("big-model", 10 * MB, "warn", available=MB)
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "big-model" in record.getMessage() and "warn" in record.getMessage()


def test_check_fit_off(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, "terminus"):
        check_fit("m", 10**15, "off", available=1)
    assert caplog.records == []


def test_check_fit_uses_system_memory_by_default() -> None:
    check_fit("tiny", 1, "refuse")
    with pytest.raises(InsufficientMemoryError):
        check_fit("absurd", 1 << 60, "refuse")


def test_manager_checks_free_memory(
    tmp_path: Path, make_fake_card: FakeCardFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from terminus.runtime import memory

    manager = _manager(tmp_path, make_fake_card, {"a": MB}, budget=10 * MB)
    monkeypatch.setattr(
        memory, "system_memory", lambda: memory.SystemMemory(total=2 * MB, available=MB // 2)
    )
    with pytest.raises(InsufficientMemoryError, match="free"):
        manager.load("a")
    assert manager.loaded() == [] and FakeEngine.loads == []


# --- concurrency and unloading -----------------------------------------------------------


def test_concurrent_loads_of_one_model_load_it_once(
    tmp_path: Path, make_fake_card: FakeCardFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = _manager(tmp_path, make_fake_card, {"a": MB})
    original = FakeEngine.load

    def slow_load(self: FakeEngine, *args: object) -> FakeChatModel:
        time.sleep(0.1)  # a window for the other threads to pile up
        return original(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(FakeEngine, "load", slow_load)
    barrier = threading.Barrier(4)
    results: list[object] = []

    def load() -> None:
        barrier.wait(timeout=5)
        results.append(manager.load("a"))

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(results) == 4
    assert FakeEngine.loads == ["a"]
    assert _loaded(manager) == ["a"]


def test_concurrent_loads_of_different_models_keep_the_budget(
    tmp_path: Path, make_fake_card: FakeCardFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = _manager(tmp_path, make_fake_card, {"b": 3 * MB // 2, "c": 3 * MB // 2})
    original = FakeEngine.load

    def slow_load(self: FakeEngine, *args: object) -> FakeChatModel:
        time.sleep(0.2)
        return original(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(FakeEngine, "load", slow_load)
    outcomes: list[object] = []

    def load(name: str) -> None:
        try:
            outcomes.append(manager.load(name))
        except InsufficientMemoryError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=load, args=(n,)) for n in ("b", "c")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(outcomes) == 2
    assert manager.used_bytes() <= manager.budget_bytes, _loaded(manager)


def test_unload(abc: ModelManager) -> None:
    a = _model(abc, "a")
    assert abc.unload("a") is True and a.closed
    assert abc.unload("a") is False
    assert abc.loaded() == []


def test_unload_of_a_busy_model(abc: ModelManager) -> None:
    with abc.use("a") as a:
        with pytest.raises(ModelBusyError) as info:
            abc.unload("a")
        assert isinstance(info.value, RuntimeError)
        assert not a.closed  # type: ignore[attr-defined]
    assert abc.unload("a") is True


def test_unload_mid_stream_is_busy(abc: ModelManager) -> None:
    stream = abc.chat(_request("a"), CancelToken())
    next(stream)
    with pytest.raises(ModelBusyError):
        abc.unload("a")
    stream.close()  # abandoning the stream releases the model
    assert abc.unload("a") is True


def test_unload_all(abc: ModelManager) -> None:
    a, b = _model(abc, "a"), _model(abc, "b")
    abc.unload_all()
    assert a.closed and b.closed and abc.loaded() == []


def test_load_by_alias_and_info(tmp_path: Path, make_fake_card: FakeCardFactory) -> None:
    catalog = Catalog(include_builtin=False)
    catalog.register(make_fake_card("a", aliases=("alpha",), memory_bytes=1234))
    manager = ModelManager(catalog, ModelCache(tmp_path / "home"), budget_bytes=MB)
    info = manager.load("alpha", LoadOptions(context_length=99, parallel=2))
    assert (info.id, info.engine, info.memory_bytes) == ("a", "fake", 1234)
    assert (info.context_length, info.parallel, info.active_requests) == (99, 2, 0)


# --- sizes, budgets, policies ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("1024", 1024),
        ("512M", 512 << 20),
        ("512MB", 512 << 20),
        ("8GiB", 8 << 30),
        ("8 gib", 8 << 30),
        ("1.5g", int(1.5 * (1 << 30))),
        ("2k", 2048),
        ("1T", 1 << 40),
        (" 3 M ", 3 << 20),
    ],
)
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "lots", "-1G", "1X", "G", "1.2.3M"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(InvalidParameterError):
        parse_size(text)


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (5 << 20, "5.0 MiB"),
        (3 << 30, "3.0 GiB"),
        (2048 << 30, "2048.0 GiB"),
    ],
)
def test_format_size(n: int, expected: str) -> None:
    assert format_size(n) == expected


def test_budget_and_policy_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_budget(123) == 123
    assert resolve_budget("1M") == 1 << 20
    monkeypatch.setenv("TERMINUS_MEMORY_BUDGET", "2M")
    assert resolve_budget(None) == 2 << 20
    monkeypatch.delenv("TERMINUS_MEMORY_BUDGET")
    assert resolve_budget(None) > 0
    assert resolve_policy(None) == "refuse"
    assert resolve_policy("WARN") == "warn"
    monkeypatch.setenv("TERMINUS_MEMORY_POLICY", "off")
    assert resolve_policy(None) == "off"
    with pytest.raises(InvalidParameterError):
        resolve_policy("sometimes")


def test_reload_after_eviction_keeps_the_explicit_load_options(abc: ModelManager) -> None:
    abc.load("a", LoadOptions(context_length=99, parallel=3))
    abc.load("b")
    abc.load("c")  # evicts a
    assert "a" not in _loaded(abc)
    model = _model(abc, "a")  # lazy reload, as a request would do
    assert (model.context_length, model.parallel) == (99, 3)
