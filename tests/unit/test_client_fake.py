"""The client end to end on the fake engine: cache, manager, transport, streams."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from terminus import AsyncTerminus, Terminus
from terminus.engines.fake import FakeEngine
from terminus.models.card import ModelCard
from terminus.types import (
    CancelToken,
    ChatEvent,
    ChatRequest,
    ContentDelta,
    Done,
    Message,
    ResponseFormat,
    Stats,
    Tool,
    ToolCall,
    ToolCallEvent,
)

FakeCardFactory = Callable[..., ModelCard]

LONG_REPLY = " ".join(f"w{i}" for i in range(200))


def _wait_until(predicate: Any, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return bool(predicate())


def _active(client: Terminus, model_id: str) -> int:
    info = {m.id: m for m in client.loaded_models()}
    return info[model_id].active_requests if model_id in info else 0


def _assert_grammar(events: list[Any]) -> None:
    dones = [e for e in events if isinstance(e, Done)]
    assert len(dones) == 1 and events[-1] is dones[0]
    assert isinstance(events[-2], Stats)
    assert all(isinstance(e, ContentDelta | ToolCallEvent) for e in events[:-2])


@pytest.fixture
def slow_client(fake_client: Terminus, make_fake_card: FakeCardFactory) -> Terminus:
    fake_client.catalog.register(
        make_fake_card("fake-slow", replies=[LONG_REPLY], token_delay_s=0.02)
    )
    return fake_client


# --- events and results --------------------------------------------------------------


def test_event_order_and_text(fake_client: Terminus) -> None:
    events = list(fake_client.completion("the quick brown fox", model="fake-chat"))
    _assert_grammar(events)
    deltas = [e for e in events if isinstance(e, ContentDelta)]
    assert [d.text for d in deltas] == ["the", " quick", " brown", " fox"]
    stats = events[-2]
    assert stats.prompt_tokens == 4 and stats.completion_tokens == 4
    assert events[-1].stop_reason == "stop"


def test_the_weights_went_through_the_cache(fake_client: Terminus) -> None:
    card = fake_client.catalog.get("fake-chat")
    assert not fake_client.cache.is_cached(card)
    assert fake_client.completion("hi", model="fake-chat").text == "hi"
    assert fake_client.cache.is_cached(card)
    link = fake_client.home / "models" / "fake-chat" / "weights.bin"
    assert link.is_symlink()
    assert link.resolve() == fake_client.cache.blob_path(card.main_file.sha256).resolve()
    assert FakeEngine.loads == ["fake-chat"]


def test_result_and_text(fake_client: Terminus) -> None:
    result = fake_client.completion("one two three", model="fake-chat").result()
    assert result.text == "one two three"
    assert result.stop_reason == "stop" and result.error is None
    assert result.stats is not None and result.stats.completion_tokens == 3
    assert fake_client.completion("alpha beta", model="fake-chat").text == "alpha beta"


def test_result_after_iteration_uses_the_same_events(fake_client: Terminus) -> None:
    stream = fake_client.completion("a b c", model="fake-chat")
    seen = list(stream)
    assert stream.result().text == "a b c"
    assert len(FakeEngine.calls) == 1  # result() did not run the request again
    assert len(seen) == 5
    with pytest.raises(RuntimeError):
        list(stream)  # one iteration per stream


def test_system_prompt_and_dict_messages(fake_client: Terminus) -> None:
    fake_client.completion(
        [{"role": "system", "content": "old"}, {"role": "user", "content": "hello there"}],
        model="fake-chat",
        system="be brief",
    ).result()
    messages = FakeEngine.calls[-1].messages
    assert [(m.role, m.content) for m in messages] == [
        ("system", "be brief"),
        ("user", "hello there"),
    ]


def test_max_tokens_gives_length(fake_client: Terminus) -> None:
    result = fake_client.completion("a b c d e f g", model="fake-chat", max_tokens=3).result()
    assert result.text == "a b c"
    assert result.stop_reason == "length"
    assert result.stats is not None and result.stats.completion_tokens == 3


def test_params_reach_the_engine(fake_client: Terminus) -> None:
    fake_client.completion(
        "x", model="fake-chat", temperature=0.5, top_p=0.9, seed=7, stop="END", max_tokens=9
    ).result()
    params = FakeEngine.calls[-1].params
    assert (params.temperature, params.top_p, params.seed, params.max_tokens) == (0.5, 0.9, 7, 9)
    assert params.stop == ("END",)


def test_default_model_comes_from_env(
    monkeypatch: pytest.MonkeyPatch, make_fake_card: FakeCardFactory
) -> None:
    monkeypatch.setenv("TERMINUS_MODEL", "fake-env")
    with Terminus(memory_budget="1G") as client:
        client.catalog.register(make_fake_card("fake-env"))
        assert client.completion("from env").text == "from env"
        assert FakeEngine.calls[-1].model == "fake-env"


# --- cancellation ----------------------------------------------------------------------


def test_cancel_from_another_thread(slow_client: Terminus) -> None:
    stream = slow_client.completion("go", model="fake-slow")
    first = threading.Event()
    events: list[Any] = []

    def consume() -> None:
        for event in stream:
            events.append(event)
            first.set()

    worker = threading.Thread(target=consume)
    started = time.monotonic()
    worker.start()
    assert first.wait(5)
    stream.cancel()
    worker.join(timeout=2)
    elapsed = time.monotonic() - started
    assert not worker.is_alive()
    assert elapsed < 1.5  # the whole reply would take 4 s
    assert stream.cancelled
    _assert_grammar(events)
    assert events[-1].stop_reason == "cancelled"
    deltas = [e for e in events if isinstance(e, ContentDelta)]
    assert 1 <= len(deltas) < 20
    assert _active(slow_client, "fake-slow") == 0


def test_leaving_a_with_block_cancels(slow_client: Terminus) -> None:
    with slow_client.completion("go", model="fake-slow") as stream:
        events = iter(stream)
        assert isinstance(next(events), ContentDelta)
    assert stream.cancelled
    rest = list(events)
    assert rest[-1] == Done(stop_reason="cancelled")
    assert len(rest) < 5
    assert _active(slow_client, "fake-slow") == 0


def test_breaking_out_of_the_loop_releases_the_model(slow_client: Terminus) -> None:
    started = time.monotonic()
    with slow_client.completion("go", model="fake-slow") as stream:
        for event in stream:
            assert isinstance(event, ContentDelta)
            break
    assert time.monotonic() - started < 1.0
    assert _active(slow_client, "fake-slow") == 0
    # No request is left pinning the model: it can be unloaded.
    assert slow_client.unload_model("fake-slow") is True


def test_cancel_before_iterating(slow_client: Terminus) -> None:
    stream = slow_client.completion("go", model="fake-slow")
    stream.cancel()
    result = stream.result()
    assert result.stop_reason == "cancelled"
    assert result.text == ""


# --- concurrency -------------------------------------------------------------------------


def test_concurrent_completions_from_threads(fake_client: Terminus) -> None:
    prompts = [f"question number {i}" for i in range(8)]
    answers: dict[int, str] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(prompts))

    def ask(i: int) -> None:
        try:
            barrier.wait(timeout=5)
            answers[i] = fake_client.completion(prompts[i], model="fake-chat").text
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert not errors
    assert answers == dict(enumerate(prompts))
    assert FakeEngine.loads == ["fake-chat"]  # loaded once, shared
    assert len(FakeEngine.calls) == 8
    assert _active(fake_client, "fake-chat") == 0


# --- asyncio -----------------------------------------------------------------------------


async def test_async_completion(fake_client: Terminus) -> None:
    aclient = AsyncTerminus(fake_client)
    events = [event async for event in aclient.completion("async hello", model="fake-chat")]
    _assert_grammar(events)
    assert "".join(e.text for e in events if isinstance(e, ContentDelta)) == "async hello"
    assert await aclient.completion("x y", model="fake-chat").text == "x y"


async def test_async_gather(fake_client: Terminus) -> None:
    aclient = AsyncTerminus(fake_client)
    prompts = [f"prompt {i}" for i in range(6)]
    texts = await asyncio.gather(*(aclient.completion(p, model="fake-chat").text for p in prompts))
    assert texts == prompts
    assert FakeEngine.loads == ["fake-chat"]


async def test_async_load_and_loaded(fake_client: Terminus) -> None:
    aclient = AsyncTerminus(fake_client)
    info = await aclient.load_model("fake-chat", context_length=32)
    assert info.id == "fake-chat" and info.context_length == 32
    assert [m.id for m in await aclient.loaded_models()] == ["fake-chat"]
    assert await aclient.unload_model("fake-chat") is True
    assert await aclient.loaded_models() == []


@pytest.fixture
def recorded_tokens(slow_client: Terminus, monkeypatch: pytest.MonkeyPatch) -> list[CancelToken]:
    """Every cancel token the client hands to its transport."""
    tokens: list[CancelToken] = []
    original = slow_client.stream_request

    def stream_request(request: ChatRequest, cancel: CancelToken) -> Iterator[ChatEvent]:
        tokens.append(cancel)
        return original(request, cancel)

    monkeypatch.setattr(slow_client, "stream_request", stream_request)
    return tokens


async def test_cancelling_the_consuming_task_stops_generation(
    slow_client: Terminus, recorded_tokens: list[CancelToken]
) -> None:
    aclient = AsyncTerminus(slow_client)
    stream = aclient.completion("go", model="fake-slow")
    first = asyncio.Event()
    received: list[Any] = []

    async def consume() -> None:
        async for event in stream:
            received.append(event)
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 5)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(recorded_tokens) == 1 and recorded_tokens[0].cancelled
    # The engine saw the request and stopped well before its 4 s reply was done.
    assert len(FakeEngine.calls) == 1
    assert await asyncio.to_thread(_wait_until, lambda: _active(slow_client, "fake-slow") == 0)
    assert time.monotonic() - started < 1.5
    assert len(received) < 20


async def test_leaving_async_for_early_cancels(
    slow_client: Terminus, recorded_tokens: list[CancelToken]
) -> None:
    aclient = AsyncTerminus(slow_client)
    async for event in aclient.completion("go", model="fake-slow"):
        assert isinstance(event, ContentDelta)
        break
    for _ in range(100):
        if recorded_tokens and recorded_tokens[0].cancelled:
            break
        await asyncio.sleep(0.01)
    assert recorded_tokens[0].cancelled
    assert await asyncio.to_thread(_wait_until, lambda: _active(slow_client, "fake-slow") == 0)


async def test_async_errors_are_raised_in_the_consumer(fake_client: Terminus) -> None:
    from terminus.errors import ContextLengthExceededError

    aclient = AsyncTerminus(fake_client)
    with pytest.raises(ContextLengthExceededError):
        await aclient.completion("word " * 100, model="fake-chat").result()


# --- structured output and tools -----------------------------------------------------------


class City(BaseModel):
    name: str
    population: int
    capital: bool


def test_response_format_shapes_reach_the_engine_alike(fake_client: Terminus) -> None:
    schema = City.model_json_schema()
    shapes: list[Any] = [
        City,
        schema,
        {"type": "json_schema", "json_schema": {"name": "city", "strict": True, "schema": schema}},
        ResponseFormat(json_schema=schema),
    ]
    results = [
        fake_client.completion("a city", model="fake-chat", response_format=shape).result()
        for shape in shapes
    ]
    formats = [call.response_format for call in FakeEngine.calls]
    assert len(formats) == len(shapes)
    assert all(f == ResponseFormat(type="json_schema", json_schema=schema) for f in formats)
    for result in results:
        city = City.model_validate(result.parsed_json())
        assert city == City(name="x", population=1, capital=True)


def test_json_object_response_format(fake_client: Terminus) -> None:
    fake_client.completion("x", model="fake-chat", response_format={"type": "json_object"}).result()
    assert FakeEngine.calls[-1].response_format == ResponseFormat(type="json_object")


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
CLOCK = {"name": "get_time", "parameters": {"type": "object", "properties": {}}}


def test_openai_tools_become_tool_objects(fake_client: Terminus) -> None:
    fake_client.completion("hi", model="fake-chat", tools=[WEATHER, CLOCK]).result()
    tools = FakeEngine.calls[-1].tools
    assert tools == (
        Tool(
            name="get_weather",
            description="Weather for a city",
            parameters=WEATHER["function"]["parameters"],  # type: ignore[index]
        ),
        Tool(name="get_time", parameters={"type": "object", "properties": {}}),
    )


def test_tool_choice_required_yields_a_tool_call(fake_client: Terminus) -> None:
    events = list(
        fake_client.completion(
            "weather?", model="fake-chat", tools=[WEATHER], tool_choice="required"
        )
    )
    _assert_grammar(events)
    calls = [e.call for e in events if isinstance(e, ToolCallEvent)]
    assert len(calls) == 1
    assert calls[0].name == "get_weather" and calls[0].arguments == {"city": "Paris"}
    assert calls[0].id
    assert events[-1].stop_reason == "tool_calls"
    assert not any(isinstance(e, ContentDelta) for e in events)


def test_named_tool_choice_picks_that_tool(fake_client: Terminus) -> None:
    result = fake_client.completion(
        "time?", model="fake-chat", tools=[WEATHER, CLOCK], tool_choice="get_time"
    ).result()
    assert [c.name for c in result.tool_calls] == ["get_time"]


def test_tool_choice_auto_answers_in_text(fake_client: Terminus) -> None:
    result = fake_client.completion("just talk", model="fake-chat", tools=[WEATHER]).result()
    assert result.text == "just talk" and result.tool_calls == ()
    assert result.stop_reason == "stop"


def test_completion_message_round_trips_into_history(fake_client: Terminus) -> None:
    first = fake_client.completion(
        "weather in Paris?", model="fake-chat", tools=[WEATHER], tool_choice="required"
    ).result()
    reply = first.message()
    assert reply.role == "assistant" and reply.content is None
    assert reply.tool_calls == first.tool_calls
    call = first.tool_calls[0]
    history: list[Any] = [
        {"role": "user", "content": "weather in Paris?"},
        reply,
        {"role": "tool", "tool_call_id": call.id, "name": call.name, "content": "sunny"},
    ]
    second = fake_client.completion(history, model="fake-chat", tools=[WEATHER]).result()
    sent = FakeEngine.calls[-1].messages
    assert sent[1] == reply
    assert sent[2] == Message(role="tool", tool_call_id=call.id, name=call.name, content="sunny")
    # A plain answer's message carries its text.
    assert second.message() == Message(role="assistant", content=second.text)

    # The same turn as dicts (model_dump) and in OpenAI's shape parses to the same message.
    assert fake_client.chat_request([reply.model_dump()], model="fake-chat").messages == (reply,)
    openai_turn = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": '{"city": "Paris"}'},
            }
        ],
    }
    parsed = fake_client.chat_request([openai_turn], model="fake-chat").messages[0]
    assert parsed.tool_calls == (ToolCall(id=call.id, name=call.name, arguments={"city": "Paris"}),)


def test_load_model_uses_options_and_is_idempotent(fake_client: Terminus) -> None:
    info = fake_client.load_model("fake-chat", context_length=40, parallel=3)
    assert (info.context_length, info.parallel, info.engine) == (40, 3, "fake")
    again = fake_client.load_model("fake-chat")
    assert again.context_length == 40
    assert FakeEngine.loads == ["fake-chat"]


def test_close_unloads_everything(make_fake_card: FakeCardFactory) -> None:
    client = Terminus(memory_budget="1G")
    client.catalog.register(make_fake_card("fake-a"))
    with client.manager.use("fake-a") as model:
        pass
    client.close()
    assert model.closed  # type: ignore[attr-defined]
    assert client.loaded_models() == []
