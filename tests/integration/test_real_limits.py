"""Context and memory limits with the real SmolLM2-135M."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from realmodel import GREEDY, MODEL, load_smollm2, make_client, wait_idle

from terminus import Terminus
from terminus.errors import ContextLengthExceededError, InsufficientMemoryError

pytestmark = pytest.mark.real

SMALL_CONTEXT = 256


@pytest.fixture(scope="module")
def small_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Terminus]:
    """A second client, with its own home, holding SmolLM2 with a 256-token context."""
    home = tmp_path_factory.mktemp("terminus-small-context")
    terminus = make_client(home)
    load_smollm2(terminus, context_length=SMALL_CONTEXT, parallel=1)
    yield terminus
    terminus.close()
    shutil.rmtree(home, ignore_errors=True)


def test_prompt_longer_than_the_context_is_refused(small_client: Terminus) -> None:
    [info] = small_client.loaded_models()
    assert info.context_length == SMALL_CONTEXT

    with pytest.raises(ContextLengthExceededError) as exc:
        small_client.completion("hello " * 400, model=MODEL, max_tokens=10).result()
    assert str(SMALL_CONTEXT) in str(exc.value)
    assert exc.value.hint
    assert isinstance(exc.value, ValueError)

    assert wait_idle(small_client)
    after = small_client.completion(
        "What is 2 plus 2?", model=MODEL, max_tokens=16, **GREEDY
    ).result()
    assert after.stop_reason in ("stop", "length")
    assert after.text.strip()


def test_generation_stops_at_the_end_of_the_context(small_client: Terminus) -> None:
    result = small_client.completion(
        "Write a long story about a dragon who learns to bake bread.",
        model=MODEL,
        system="You are a helpful assistant who writes very long stories. " * 12,
        max_tokens=1000,
        **GREEDY,
    ).result()
    assert result.stats is not None
    used = result.stats.prompt_tokens + result.stats.completion_tokens
    assert result.stop_reason == "length"
    assert SMALL_CONTEXT - 8 <= used <= SMALL_CONTEXT  # the slot's context, not max_tokens


def test_memory_budget_too_small_refuses_to_load(real_home: Path) -> None:
    terminus = make_client(real_home, memory_budget="10M")
    try:
        with pytest.raises(InsufficientMemoryError, match="budget"):
            load_smollm2(terminus)
        assert terminus.loaded_models() == []
    finally:
        terminus.close()


def test_memory_policy_off_loads_despite_the_budget(real_home: Path) -> None:
    terminus = make_client(real_home, memory_budget="10M", memory_policy="off")
    try:
        load_smollm2(terminus, context_length=SMALL_CONTEXT, parallel=1)
        assert [m.id for m in terminus.loaded_models()] == [MODEL]
        result = terminus.completion("Say hello.", model=MODEL, max_tokens=8, **GREEDY).result()
        assert result.text.strip()
    finally:
        terminus.close()


def test_memory_policy_warn_loads_and_warns(
    real_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    terminus = make_client(real_home, memory_budget="10M", memory_policy="warn")
    try:
        with caplog.at_level(logging.WARNING, logger="terminus"):
            load_smollm2(terminus, context_length=SMALL_CONTEXT, parallel=1)
        assert [m.id for m in terminus.loaded_models()] == [MODEL]
        assert any("budget" in r.getMessage() for r in caplog.records)
    finally:
        terminus.close()
