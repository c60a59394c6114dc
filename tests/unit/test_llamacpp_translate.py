"""llama.cpp chunk translation, fed synthetic chunks (no model): thinking, native tool calls,
prompted tool calls held back while streaming, errors, and stop reasons."""

from __future__ import annotations

import queue
import time
from typing import Any

import pytest

from terminus.engines.llamacpp_events import translate_chunks
from terminus.engines.llamacpp_proxy import END
from terminus.errors import ContextLengthExceededError, EngineError, InvalidParameterError
from terminus.types import (
    CancelToken,
    ContentDelta,
    Done,
    Stats,
    ThinkingDelta,
    Tool,
    ToolCallEvent,
)

WEATHER = Tool(
    name="get_weather",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)


def run(
    chunks: list[Any],
    tools: tuple[Tool, ...] = (),
    plan: str = "none",
    cancel: CancelToken | None = None,
) -> list[Any]:
    q: queue.SimpleQueue[Any] = queue.SimpleQueue()
    for chunk in chunks:
        q.put(chunk)
    q.put(END)
    return list(translate_chunks(q, tools, plan, cancel or CancelToken(), time.perf_counter()))


def delta(**fields: Any) -> dict[str, Any]:
    return {"choices": [{"delta": fields, "finish_reason": None}]}


def finish(reason: str, prompt: int = 7, completion: int = 3) -> dict[str, Any]:
    return {
        "choices": [{"delta": {}, "finish_reason": reason}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion},
        "timings": {"predicted_per_second": 50.0},
    }


def test_thinking_then_content_then_stats_and_done() -> None:
    events = run([delta(reasoning_content="hmm"), delta(content="Paris"), finish("stop")])
    assert isinstance(events[0], ThinkingDelta) and events[0].text == "hmm"
    assert isinstance(events[1], ContentDelta) and events[1].text == "Paris"
    stats, done = events[-2], events[-1]
    assert isinstance(stats, Stats) and stats.prompt_tokens == 7 and stats.completion_tokens == 3
    assert stats.tokens_per_second == 50.0 and stats.time_to_first_token_s is not None
    assert isinstance(done, Done) and done.stop_reason == "stop"


def test_length_finish_maps_to_length() -> None:
    assert run([delta(content="a"), finish("length")])[-1].stop_reason == "length"


def test_native_tool_call_pieces_are_joined() -> None:
    events = run(
        [
            delta(
                tool_calls=[{"index": 0, "id": "c1", "function": {"name": "get_", "arguments": ""}}]
            ),
            delta(tool_calls=[{"index": 0, "function": {"name": "weather", "arguments": '{"ci'}}]),
            delta(tool_calls=[{"index": 0, "function": {"arguments": 'ty": "Paris"}'}}]),
            finish("tool_calls"),
        ],
        tools=(WEATHER,),
        plan="native",
    )
    calls = [e for e in events if isinstance(e, ToolCallEvent)]
    assert len(calls) == 1
    assert calls[0].call.id == "c1" and calls[0].call.name == "get_weather"
    assert calls[0].call.arguments == {"city": "Paris"}
    assert events[-1].stop_reason == "tool_calls"


def test_prompted_auto_holds_back_a_json_call_and_parses_it() -> None:
    events = run(
        [
            delta(content='{"name": "get_weather", '),
            delta(content='"arguments": '),
            delta(content='{"city": "Oslo"}}'),
            finish("stop"),
        ],
        tools=(WEATHER,),
        plan="auto",
    )
    assert not any(isinstance(e, ContentDelta) for e in events)
    calls = [e.call for e in events if isinstance(e, ToolCallEvent)]
    assert [(c.name, c.arguments) for c in calls] == [("get_weather", {"city": "Oslo"})]
    assert events[-1].stop_reason == "tool_calls"


def test_prompted_auto_streams_prose_once_it_is_clearly_not_a_call() -> None:
    events = run(
        [delta(content="It is"), delta(content=" sunny"), finish("stop")],
        tools=(WEATHER,),
        plan="auto",
    )
    texts = [e.text for e in events if isinstance(e, ContentDelta)]
    assert texts == ["It is", " sunny"]  # streamed as it came, not held to the end
    assert events[-1].stop_reason == "stop"


def test_prompted_auto_json_that_is_not_a_call_is_released_as_content() -> None:
    events = run([delta(content='{"answer": 4}'), finish("stop")], tools=(WEATHER,), plan="auto")
    assert [e.text for e in events if isinstance(e, ContentDelta)] == ['{"answer": 4}']
    assert not any(isinstance(e, ToolCallEvent) for e in events)


def test_cancelled_wins_over_finish_reason() -> None:
    token = CancelToken()
    token.cancel()
    assert run([delta(content="a"), finish("stop")], cancel=token)[-1].stop_reason == "cancelled"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            {
                "type": "exceed_context_size_error",
                "code": 400,
                "n_prompt_tokens": 900,
                "n_ctx": 512,
            },
            ContextLengthExceededError,
        ),
        ({"type": "invalid_request_error", "code": 400, "message": "bad"}, InvalidParameterError),
        ({"type": "server_error", "code": 500, "message": "boom"}, EngineError),
    ],
)
def test_error_chunks_raise_typed_errors(error: dict[str, Any], expected: type) -> None:
    with pytest.raises(expected):
        run([{"error": error}])


def test_context_overflow_names_the_context_asked_for() -> None:
    from terminus.engines.llamacpp_events import map_error_chunk

    error = {"type": "exceed_context_size_error", "n_prompt_tokens": 321, "n_ctx": 256}
    exc = map_error_chunk(error, (64, 4))
    assert isinstance(exc, ContextLengthExceededError)
    assert (
        str(exc)
        == "prompt is 321 tokens; the context is 64 tokens per request (256 shared by 4 slots)"
    )
