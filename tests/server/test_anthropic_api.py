"""Anthropic's Messages API on fake models, through the official ``anthropic`` client."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx
import httpx2
import pytest
from fastapi import FastAPI
from serverkit import running

WEATHER = {
    "name": "get_weather",
    "description": "Weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture
async def app(make_app: Any) -> AsyncIterator[FastAPI]:
    app = make_app()
    async with running(app):
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[anthropic.AsyncAnthropic]:
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app))  # the SDK's own httpx
    async with anthropic.AsyncAnthropic(
        base_url="http://localhost", api_key="unused", http_client=http, max_retries=0
    ) as client:
        yield client


@pytest.fixture
def http(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost")


async def test_create_with_system(client: anthropic.AsyncAnthropic) -> None:
    from terminus.engines.fake import FakeEngine

    message = await client.messages.create(
        model="fake-chat",
        max_tokens=64,
        system="Be brief.",
        messages=[{"role": "user", "content": "the sky is blue"}],
    )
    assert message.type == "message" and message.role == "assistant"
    assert message.id.startswith("msg_")
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == "the sky is blue"  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens == 4
    roles = [m.role for m in FakeEngine.calls[-1].messages]
    assert roles == ["system", "user"]


async def test_max_tokens_stop_reason(client: anthropic.AsyncAnthropic) -> None:
    message = await client.messages.create(
        model="fake-chat", max_tokens=2, messages=[{"role": "user", "content": "a b c d"}]
    )
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens == 2


async def test_stream_events(client: anthropic.AsyncAnthropic) -> None:
    async with client.messages.stream(
        model="fake-chat", max_tokens=64, messages=[{"role": "user", "content": "one two three"}]
    ) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert "content_block_start" in kinds and "content_block_stop" in kinds
    assert final.content[0].text == "one two three"  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 3


async def test_raw_stream_order(http: httpx.AsyncClient) -> None:
    body = {
        "model": "fake-chat",
        "max_tokens": 16,
        "stream": True,
        "messages": [{"role": "user", "content": "a b"}],
    }
    response = await http.post("/v1/messages", json=body)
    names = [line[7:] for line in response.text.splitlines() if line.startswith("event: ")]
    assert names == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


async def test_tool_use_round_trip(client: anthropic.AsyncAnthropic) -> None:
    from terminus.engines.fake import FakeEngine

    question = {"role": "user", "content": "Weather in Paris?"}
    first = await client.messages.create(
        model="fake-chat",
        max_tokens=64,
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=[question],  # type: ignore[list-item]
    )
    assert first.stop_reason == "tool_use"
    [use] = [b for b in first.content if b.type == "tool_use"]
    assert use.name == "get_weather" and use.input == {"city": "Paris"}
    assert use.id
    final = await client.messages.create(
        model="fake-chat",
        max_tokens=64,
        tools=[WEATHER],  # type: ignore[list-item]
        messages=[
            question,  # type: ignore[list-item]
            {"role": "assistant", "content": first.content},  # type: ignore[typeddict-item]
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "22 C"}],
            },
        ],
    )
    assert final.stop_reason == "end_turn"
    sent = FakeEngine.calls[-1].messages
    assert sent[1].tool_calls[0].id == use.id
    assert sent[2].role == "tool" and sent[2].tool_call_id == use.id
    assert sent[2].name == "get_weather" and sent[2].content == "22 C"


async def test_streamed_tool_use(client: anthropic.AsyncAnthropic) -> None:
    async with client.messages.stream(
        model="fake-chat",
        max_tokens=64,
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "any"},
        messages=[{"role": "user", "content": "Weather?"}],
    ) as stream:
        final = await stream.get_final_message()
    [use] = final.content
    assert use.type == "tool_use" and use.input == {"city": "Paris"}
    assert final.stop_reason == "tool_use"


async def test_structured_output(client: anthropic.AsyncAnthropic) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    message = await client.messages.create(
        model="fake-chat",
        max_tokens=64,
        messages=[{"role": "user", "content": "x"}],
        output_config={"format": {"type": "json_schema", "schema": schema}},
    )
    assert message.content[0].text == '{"answer": "x"}'  # type: ignore[union-attr]


async def test_sampling_through_extra_body(client: anthropic.AsyncAnthropic) -> None:
    from terminus.engines.fake import FakeEngine

    await client.messages.create(
        model="fake-chat",
        max_tokens=8,
        stop_sequences=["END"],
        messages=[{"role": "user", "content": "x"}],
        extra_body={"temperature": 0.4, "top_p": 0.9, "top_k": 5},
    )
    params = FakeEngine.calls[-1].params
    assert (params.temperature, params.top_p, params.top_k) == (0.4, 0.9, 5)
    assert params.stop == ("END",) and params.max_tokens == 8


async def test_count_tokens(client: anthropic.AsyncAnthropic) -> None:
    counted = await client.messages.count_tokens(
        model="fake-chat", messages=[{"role": "user", "content": "one two three"}]
    )
    assert counted.input_tokens == 3  # the fake engine counts words


async def test_errors(client: anthropic.AsyncAnthropic) -> None:
    hello: Any = [{"role": "user", "content": "hi"}]
    with pytest.raises(anthropic.NotFoundError) as missing:
        await client.messages.create(model="no-such-model", max_tokens=8, messages=hello)
    assert missing.value.status_code == 404
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError) as bad:
        await client.messages.create(
            model="fake-chat", max_tokens=8, messages=hello, extra_body={"temperature": 9}
        )
    assert bad.value.body["type"] == "error"  # type: ignore[index]
    assert bad.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
        ({"max_tokens": 8, "messages": []}, "messages"),
        (
            {
                "max_tokens": 8,
                "messages": [
                    {"role": "user", "content": [{"type": "document", "source": {"type": "text"}}]}
                ],
            },
            "messages.0.content.0.type",
        ),
        (
            {
                "max_tokens": 8,
                "messages": [{"role": "user", "content": "x"}],
                "tools": [{"type": "web_search_20250305", "name": "web_search"}],
            },
            "tools.0.type",
        ),
        (
            {
                "max_tokens": 8,
                "messages": [{"role": "user", "content": "x"}],
                "mcp_servers": [{"url": "http://x"}],
            },
            "mcp_servers",
        ),
    ],
)
async def test_bad_input_names_the_field(
    http: httpx.AsyncClient, body: dict[str, Any], needle: str
) -> None:
    response = await http.post("/v1/messages", json={"model": "fake-chat", **body})
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert needle in error["error"]["message"]


async def test_x_api_key_is_accepted(make_app: Any) -> None:
    async with running(make_app(api_keys=frozenset({"k1"}))) as http:
        body = {
            "model": "fake-chat",
            "max_tokens": 8,
            "messages": [{"role": "user", "content": "x"}],
        }
        denied = await http.post("/v1/messages", json=body)
        assert denied.status_code == 401
        assert denied.json()["error"]["type"] == "authentication_error"
        allowed = await http.post("/v1/messages", json=body, headers={"x-api-key": "k1"})
        assert allowed.status_code == 200


def _failing_chat(self: Any, request: Any, cancel: Any) -> Any:
    from terminus.errors import EngineError
    from terminus.types import ContentDelta

    yield ContentDelta(text="partial")
    raise EngineError("the engine fell over")


async def test_failure_mid_stream_is_an_error_event(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from terminus.engines.fake import FakeChatModel

    monkeypatch.setattr(FakeChatModel, "chat", _failing_chat)
    body = {
        "model": "fake-chat",
        "max_tokens": 8,
        "stream": True,
        "messages": [{"role": "user", "content": "x"}],
    }
    text = (await http.post("/v1/messages", json=body)).text
    last = text.strip().split("\n\n")[-1]
    assert last.startswith("event: error\ndata: ")
    assert json.loads(last.split("data: ", 1)[1]) == {
        "type": "error",
        "error": {"type": "api_error", "message": "the engine fell over"},
    }
