"""The chat contract every engine keeps, run against each engine that can run here.

The fake engine runs beside the real ones so that tests written against it stay true
of real models: the same event grammar, stop reasons, stats, structured output and
tool calls.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fakecards import fake_card

from terminus import Terminus
from terminus.engines.registry import engine_class
from terminus.errors import ContextLengthExceededError, InvalidParameterError
from terminus.models.card import ModelCard
from terminus.types import (
    ContentDelta,
    Done,
    Stats,
    ThinkingDelta,
    ToolCallEvent,
    collect_completion,
)

CONTEXT = 1024
PARALLEL = 2
#: One thread: llama.cpp's spinning thread pool stalls for tens of seconds when another
#: process competes for the cores; a single thread keeps the suite at a few seconds.
THREADS = 1
#: Deterministic sampling for the real models.
SAMPLING: dict[str, Any] = {"temperature": 0, "seed": 1}

ANSWER_SCHEMA = {
    "type": "object",
    "properties": {
        "answer": {"type": "string", "maxLength": 20},
        "confident": {"type": "boolean"},
    },
    "required": ["answer", "confident"],
    "additionalProperties": False,
}
WEATHER_PARAMETERS = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": WEATHER_PARAMETERS,
    },
}

#: Known deviations from the contract, by (engine, check); see the reasons.
KNOWN_BUGS: dict[tuple[str, str], str] = {}  # (engine, check) -> reason, strict xfail


@dataclass(frozen=True)
class Engine:
    name: str
    model: str
    client: Terminus


@pytest.fixture(scope="session")
def contract_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Terminus]:
    home = tmp_path_factory.mktemp("contract-home")
    with Terminus(
        home=home, memory_budget="4G", memory_policy="refuse", allow_download=False
    ) as client:
        yield client


def _fake_card(folder: Path) -> ModelCard:
    return fake_card(folder, "fake-contract", tool_arguments={"city": "Paris"})


@pytest.fixture(scope="session", params=["fake", "llamacpp"])
def engine(
    request: pytest.FixtureRequest,
    contract_client: Terminus,
    tmp_path_factory: pytest.TempPathFactory,
) -> Engine:
    name = request.param
    availability = engine_class(name).probe()
    if not availability.ok:
        pytest.skip(f"engine {name} cannot run here: {availability.detail}")
    if name == "fake":
        card = _fake_card(tmp_path_factory.mktemp("fake-weights"))
        contract_client.catalog.register(card)
        model = card.id
    else:
        request.getfixturevalue("smollm2_gguf")  # installed, so the pull is local
        model = "smollm2-135m-instruct"
    contract_client.load_model(model, context_length=CONTEXT, parallel=PARALLEL, threads=THREADS)
    return Engine(name, model, contract_client)


def _events(engine: Engine, prompt: Any, **kwargs: Any) -> list[Any]:
    return list(engine.client.completion(prompt, model=engine.model, **{**SAMPLING, **kwargs}))


def assert_grammar(events: list[Any]) -> tuple[Stats, Done]:
    """Deltas and tool calls, then exactly one Stats, then exactly one Done, last."""
    assert len(events) >= 2
    dones = [e for e in events if isinstance(e, Done)]
    stats = [e for e in events if isinstance(e, Stats)]
    assert len(dones) == 1 and events[-1] is dones[0], events
    assert len(stats) == 1 and events[-2] is stats[0], events
    for event in events[:-2]:
        assert isinstance(event, ContentDelta | ThinkingDelta | ToolCallEvent), event
        if isinstance(event, ContentDelta | ThinkingDelta):
            assert event.text
    assert stats[0].total_s >= 0
    return stats[0], dones[0]


def _known_bug(request: pytest.FixtureRequest, engine: Engine, check: str) -> None:
    reason = KNOWN_BUGS.get((engine.name, check))
    if reason:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))


# --- the contract -----------------------------------------------------------------------


def test_plain_completion(engine: Engine) -> None:
    events = _events(engine, "Say hello to the world in one short sentence.", max_tokens=48)
    stats, done = assert_grammar(events)
    assert done.stop_reason in ("stop", "length") and done.error is None
    assert stats.prompt_tokens > 0 and stats.completion_tokens > 0
    text = collect_completion(events).text
    assert text.strip()
    assert not any(isinstance(e, ToolCallEvent) for e in events)


def test_max_tokens_stops_with_length(engine: Engine) -> None:
    events = _events(engine, "Tell me a long story about a dragon and a knight.", max_tokens=3)
    stats, done = assert_grammar(events)
    assert done.stop_reason == "length"
    assert 0 < stats.completion_tokens <= 3
    assert stats.prompt_tokens > 0
    assert 0 < sum(isinstance(e, ContentDelta) for e in events) <= 3


def test_cancel(engine: Engine) -> None:
    stream = engine.client.completion(
        "Count from 1 to 200, separated by commas.", model=engine.model, max_tokens=400, **SAMPLING
    )
    events: list[Any] = []
    started = time.monotonic()
    for event in stream:
        events.append(event)
        if isinstance(event, ContentDelta):
            stream.cancel()
    assert time.monotonic() - started < 10
    _, done = assert_grammar(events)
    assert done.stop_reason == "cancelled"
    assert sum(isinstance(e, ContentDelta) for e in events) < 50
    assert engine.client.loaded_models()  # the model is still loaded, and idle again
    assert all(m.active_requests == 0 for m in engine.client.loaded_models())


def test_cancel_from_another_thread(engine: Engine) -> None:
    stream = engine.client.completion(
        "Count from 1 to 200, separated by commas.", model=engine.model, max_tokens=400, **SAMPLING
    )
    timer = threading.Timer(0.05, stream.cancel)
    timer.start()
    try:
        events = list(stream)
    finally:
        timer.cancel()
    _, done = assert_grammar(events)
    # A fast engine may finish before the timer fires; it must not end any other way.
    assert done.stop_reason in ("cancelled", "stop", "length")


@pytest.mark.parametrize("check", ["plain", "cancelled", "tool_call"])
def test_stats_count_tokens(engine: Engine, check: str, request: pytest.FixtureRequest) -> None:
    _known_bug(request, engine, check)
    if check == "plain":
        events = _events(engine, "Name three colors.", max_tokens=16)
    elif check == "tool_call":
        events = _events(
            engine, "What is the weather in Paris?", tools=[WEATHER], tool_choice="required"
        )
    else:
        stream = engine.client.completion(
            "Count from 1 to 200, separated by commas.",
            model=engine.model,
            max_tokens=400,
            **SAMPLING,
        )
        events = []
        for event in stream:
            events.append(event)
            if sum(isinstance(e, ContentDelta) for e in events) == 2:
                stream.cancel()
        assert events[-1].stop_reason == "cancelled"
    stats, _ = assert_grammar(events)
    assert stats.prompt_tokens > 0
    assert stats.completion_tokens > 0


def test_response_format_schema(engine: Engine) -> None:
    events = _events(
        engine,
        "What is the capital of France? Reply in JSON.",
        response_format=ANSWER_SCHEMA,
        max_tokens=96,
    )
    _, done = assert_grammar(events)
    assert done.stop_reason == "stop"
    completion = collect_completion(events)
    value = completion.parsed_json()
    jsonschema.validate(value, ANSWER_SCHEMA)


def test_required_tool_call(engine: Engine) -> None:
    events = _events(
        engine,
        "What is the weather in Paris right now?",
        tools=[WEATHER],
        tool_choice="required",
        max_tokens=96,
    )
    _, done = assert_grammar(events)
    calls = [e.call for e in events if isinstance(e, ToolCallEvent)]
    assert len(calls) == 1, events
    call = calls[0]
    assert call.name == "get_weather" and call.id
    jsonschema.validate(call.arguments, WEATHER_PARAMETERS)
    assert done.stop_reason == "tool_calls"
    # The call round-trips as history for the next turn.
    completion = collect_completion(events)
    follow_up = [
        {"role": "user", "content": "What is the weather in Paris right now?"},
        completion.message(),
        {"role": "tool", "tool_call_id": call.id, "name": call.name, "content": "Sunny, 21 C"},
    ]
    events = _events(engine, follow_up, tools=[WEATHER], tool_choice="none", max_tokens=32)
    _, done = assert_grammar(events)
    assert done.stop_reason in ("stop", "length")
    assert not any(isinstance(e, ToolCallEvent) for e in events)


def test_prompt_longer_than_the_context(engine: Engine) -> None:
    with pytest.raises(ContextLengthExceededError):
        _events(engine, "word " * (CONTEXT + 200), max_tokens=4)
    # The engine is still usable afterwards.
    assert_grammar(_events(engine, "Say hi.", max_tokens=4))


def test_parallel_requests(engine: Engine) -> None:
    results: dict[int, list[Any]] = {}
    errors: list[BaseException] = []

    def ask(i: int) -> None:
        try:
            results[i] = _events(engine, f"Write the number {i} in words.", max_tokens=12)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(PARALLEL + 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert sorted(results) == list(range(PARALLEL + 1))
    for events in results.values():
        _, done = assert_grammar(events)
        assert done.stop_reason in ("stop", "length")


def test_naming_an_unknown_tool_is_invalid(engine: Engine, request: pytest.FixtureRequest) -> None:
    _known_bug(request, engine, "unknown_tool")
    with pytest.raises(InvalidParameterError):
        _events(engine, "Hi", tools=[WEATHER], tool_choice="launch_missiles", max_tokens=32)


def test_stream_events_serialise(engine: Engine) -> None:
    """Every event survives a JSON round trip (what the HTTP and peer transports send)."""
    from pydantic import TypeAdapter

    from terminus.types import ChatEvent

    adapter: TypeAdapter[Any] = TypeAdapter(ChatEvent)
    events = _events(engine, "Say hello.", max_tokens=8)
    for event in events:
        assert adapter.validate_json(json.dumps(event.model_dump(mode="json"))) == event
