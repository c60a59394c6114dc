"""The OpenAI endpoints over the fake engine: response shapes, SSE framing, tools, formats."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from serverkit import assert_error, chat_body, sse_events

from terminus.engines.fake import FakeEngine
from terminus.types import Message, ToolCall

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
        "strict": True,
    },
}


def content_of(events: list[Any]) -> str:
    return "".join(
        e["choices"][0]["delta"].get("content") or ""
        for e in events
        if isinstance(e, dict) and e.get("choices")
    )


async def test_chat_completion_shape(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/chat/completions", json=chat_body("the sky is blue"))
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-") and isinstance(body["created"], int)
    assert body["model"] == "fake-chat"
    [choice] = body["choices"]
    assert choice["index"] == 0 and choice["finish_reason"] == "stop"
    assert choice["message"] == {"role": "assistant", "content": "the sky is blue", "refusal": None}
    assert body["usage"] == {"prompt_tokens": 4, "completion_tokens": 4, "total_tokens": 8}


async def test_sampling_parameters_reach_terminus(api: httpx.AsyncClient) -> None:
    extra = {
        "temperature": 0.5,
        "top_p": 0.9,
        "seed": 7,
        "max_completion_tokens": 3,
        "max_tokens": 99,  # max_completion_tokens wins, as in OpenAI's API
        "stop": "END",
        "top_k": 20,
        "user": "someone",  # accepted and ignored
        "parallel_tool_calls": True,
        "some_future_field": {"x": 1},
    }
    response = await api.post("/v1/chat/completions", json=chat_body("a b c d e f", **extra))
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["finish_reason"] == "length"
    params = FakeEngine.calls[-1].params
    assert (params.temperature, params.top_p, params.seed) == (0.5, 0.9, 7)
    assert (params.max_tokens, params.stop, params.top_k) == (3, ("END",), 20)


async def test_stream_framing_and_usage(api: httpx.AsyncClient) -> None:
    body = chat_body("one two three", stream=True, stream_options={"include_usage": True})
    response = await api.post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    events = sse_events(response.text)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert len({c["id"] for c in chunks}) == 1
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert content_of(chunks) == "one two three"
    finish = chunks[-2]
    assert finish["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }
    usage = chunks[-1]
    assert usage["choices"] == []
    assert usage["usage"] == {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}
    assert all(c["usage"] is None for c in chunks[:-1])


async def test_stream_without_usage_has_no_usage_field(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/chat/completions", json=chat_body("hi", stream=True))
    events = sse_events(response.text)
    assert events[-1] == "[DONE]"
    assert all("usage" not in e for e in events[:-1])
    assert events[-2]["choices"][0]["finish_reason"] == "stop"


async def test_required_tool_call(api: httpx.AsyncClient) -> None:
    body = chat_body("weather in Paris?", tools=[WEATHER], tool_choice="required")
    response = await api.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    choice = response.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["content"] is None
    [call] = message["tool_calls"]
    assert call["type"] == "function" and call["id"].startswith("call_")
    assert call["function"]["name"] == "get_weather"
    assert isinstance(call["function"]["arguments"], str)
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    request = FakeEngine.calls[-1]
    assert request.tool_choice == "required"
    assert request.tools[0].name == "get_weather"
    assert request.tools[0].parameters["required"] == ["city"]


async def test_named_tool_choice_streams_a_tool_call(api: httpx.AsyncClient) -> None:
    body = chat_body(
        "weather?",
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        stream=True,
    )
    events = sse_events((await api.post("/v1/chat/completions", json=body)).text)
    calls = [
        c["choices"][0]["delta"]["tool_calls"]
        for c in events[:-1]
        if c["choices"] and "tool_calls" in c["choices"][0]["delta"]
    ]
    assert len(calls) == 1
    [call] = calls[0]
    assert call["index"] == 0 and call["id"].startswith("call_")
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    assert events[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert FakeEngine.calls[-1].tool_choice == "get_weather"


async def test_tool_results_are_accepted_back(api: httpx.AsyncClient) -> None:
    history = [
        {"role": "developer", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather in "},
                {"type": "text", "text": "Paris?"},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_abc",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_abc", "content": "22 C, sunny"},
    ]
    body = {"model": "fake-chat", "messages": history, "tools": [WEATHER], "tool_choice": "none"}
    response = await api.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["finish_reason"] == "stop"
    messages = FakeEngine.calls[-1].messages
    assert messages[0] == Message(role="system", content="Be brief.")
    assert messages[1] == Message(role="user", content="Weather in Paris?")
    assert messages[2].tool_calls == (
        ToolCall(id="call_abc", name="get_weather", arguments={"city": "Paris"}),
    )
    # the tool result is named after its call, for templates that show the function name
    assert messages[3] == Message(
        role="tool", content="22 C, sunny", tool_call_id="call_abc", name="get_weather"
    )


async def test_json_schema_response_format(api: httpx.AsyncClient) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}, "confident": {"type": "boolean"}},
        "required": ["answer", "confident"],
    }
    body = chat_body(
        "capital of France?",
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": schema, "strict": True},
        },
    )
    response = await api.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    assert json.loads(response.json()["choices"][0]["message"]["content"]) == {
        "answer": "x",
        "confident": True,
    }
    sent = FakeEngine.calls[-1].response_format
    assert sent is not None and sent.type == "json_schema" and sent.json_schema == schema


async def test_json_object_and_text_response_formats(api: httpx.AsyncClient) -> None:
    body = chat_body("x", response_format={"type": "json_object"})
    assert (await api.post("/v1/chat/completions", json=body)).status_code == 200
    sent = FakeEngine.calls[-1].response_format
    assert sent is not None and sent.type == "json_object"
    body = chat_body("x", response_format={"type": "text"})
    assert (await api.post("/v1/chat/completions", json=body)).status_code == 200
    assert FakeEngine.calls[-1].response_format is None


async def test_invalid_schema_is_400(api: httpx.AsyncClient) -> None:
    bad = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 12}}}
    response = await api.post("/v1/chat/completions", json=chat_body("x", response_format=bad))
    assert_error(response, 400, "invalid_schema")


async def test_models_list_and_retrieve(api: httpx.AsyncClient) -> None:
    await api.post("/v1/chat/completions", json=chat_body("load it"))
    body = (await api.get("/v1/models")).json()
    assert body["object"] == "list"
    by_id = {m["id"]: m for m in body["data"]}
    assert {"fake-chat", "fake-slow", "fake-base", "smollm2-135m-instruct"} <= set(by_id)
    assert {"fake-embed", "all-minilm-l6-v2"} <= set(by_id)
    # every kind of model is listed, with its kind and where it is served
    assert by_id["whisper-tiny.en"]["kind"] == "stt"
    assert "/v1/audio/transcriptions" in by_id["whisper-tiny.en"]["endpoints"]
    assert by_id["en_us-joe-medium"]["kind"] == "tts"
    assert by_id["pp-ocrv6-small"]["kind"] == "ocr"
    assert by_id["fake-chat"]["kind"] == "chat" and "/api/chat" in by_id["fake-chat"]["endpoints"]
    chat = by_id["fake-chat"]
    assert chat["object"] == "model" and chat["owned_by"] == "terminus"
    assert chat["loaded"] is True and chat["cached"] is True
    assert by_id["fake-slow"]["loaded"] is False
    assert by_id["fake-base"]["capability"] == "completion"
    assert by_id["fake-embed"]["capability"] == "embed"
    one = (await api.get("/v1/models/smollm2")).json()  # an alias resolves to the card
    assert one["id"] == "smollm2-135m-instruct" and "smollm2" in one["aliases"]


async def test_terminus_model_info(api: httpx.AsyncClient) -> None:
    info = (await api.get("/terminus/v1/models/fake-chat")).json()
    assert info["id"] == "fake-chat" and info["engine"] == "fake" and info["loaded"] is None
    await api.post("/v1/chat/completions", json=chat_body("load it"))
    info = (await api.get("/terminus/v1/models/fake-chat")).json()
    assert info["cached"] is True
    assert info["loaded"]["id"] == "fake-chat" and info["loaded"]["active_requests"] == 0
    assert_error(await api.get("/terminus/v1/models/nope"), 404, "model_not_found")


async def test_server_load_options_apply_to_lazy_loads(make_app: Any) -> None:
    from serverkit import running

    async with running(make_app(context_length=33, parallel=3)) as http:
        assert (await http.post("/v1/chat/completions", json=chat_body("x"))).status_code == 200
        info = (await http.get("/terminus/v1/models/fake-chat")).json()
    assert info["loaded"]["context_length"] == 33 and info["loaded"]["parallel"] == 3


@pytest.mark.usefixtures("text_capable")
async def test_text_completion(api: httpx.AsyncClient) -> None:
    body = {"model": "fake-base", "prompt": "Once upon a time", "max_tokens": 5}
    response = await api.post("/v1/completions", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["object"] == "text_completion" and data["id"].startswith("cmpl-")
    assert data["model"] == "fake-base"
    assert data["choices"] == [
        {"text": " and so on", "index": 0, "logprobs": None, "finish_reason": "stop"}
    ]
    assert data["usage"] == {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}


@pytest.mark.usefixtures("text_capable")
async def test_text_completion_stream(api: httpx.AsyncClient) -> None:
    body = {
        "model": "fake-base",
        "prompt": ["Once upon a time"],
        "max_tokens": 2,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    events = sse_events((await api.post("/v1/completions", json=body)).text)
    assert events[-1] == "[DONE]"
    texts = [e["choices"][0]["text"] for e in events[:-1] if e["choices"]]
    assert "".join(texts) == " and so"
    assert events[-3]["choices"][0]["finish_reason"] == "length"
    assert events[-2]["choices"] == [] and events[-2]["usage"]["completion_tokens"] == 2
    assert all(e["object"] == "text_completion" for e in events[:-1])


async def test_base_model_cannot_chat(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/chat/completions", json=chat_body("x", model="fake-base"))
    error = assert_error(response, 400, "capability_not_supported")
    assert "/v1/completions" in error["message"]
