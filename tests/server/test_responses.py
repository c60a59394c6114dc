"""/v1/responses on fake models, in-process: shapes, the event sequence, the store, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from serverkit import assert_error

from terminus.engines.fake import FakeEngine
from terminus.server.responses_store import ResponseStore

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def responses_events(body: str) -> list[dict[str, Any]]:
    """Responses-style SSE: each block an ``event:`` line naming the type, then ``data:``."""
    events = []
    for block in body.strip().split("\n\n"):
        event_line, data_line = block.split("\n")
        assert event_line.startswith("event: ") and data_line.startswith("data: "), block
        data = json.loads(data_line[len("data: ") :])
        assert data["type"] == event_line[len("event: ") :]
        events.append(data)
    return events


async def test_create_retrieve_delete(api: httpx.AsyncClient) -> None:
    reply = await api.post(
        "/v1/responses",
        json={"model": "fake-chat", "input": "hello there", "instructions": "Be brief."},
    )
    assert reply.status_code == 200, reply.text
    response = reply.json()
    assert response["object"] == "response" and response["id"].startswith("resp_")
    assert response["status"] == "completed" and response["completed_at"] is not None
    [message] = response["output"]
    assert message["type"] == "message" and message["role"] == "assistant"
    assert message["content"][0]["type"] == "output_text"
    assert "hello there" in message["content"][0]["text"]
    usage = response["usage"]
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert response["instructions"] == "Be brief." and response["store"] is True
    [request] = FakeEngine.calls
    assert request.messages[0].role == "system" and request.messages[0].content == "Be brief."

    stored = await api.get(f"/v1/responses/{response['id']}")
    assert stored.status_code == 200 and stored.json() == response
    items = (await api.get(f"/v1/responses/{response['id']}/input_items")).json()
    assert [i["content"][0]["text"] for i in items["data"]] == ["hello there"]
    deleted = await api.delete(f"/v1/responses/{response['id']}")
    assert deleted.json() == {"id": response["id"], "object": "response", "deleted": True}
    assert_error(await api.get(f"/v1/responses/{response['id']}"), 404, "not_found")
    assert_error(await api.delete(f"/v1/responses/{response['id']}"), 404, "not_found")


async def test_stream_event_sequence(api: httpx.AsyncClient) -> None:
    reply = await api.post(
        "/v1/responses", json={"model": "fake-chat", "input": "one two", "stream": True}
    )
    assert reply.status_code == 200 and reply.headers["content-type"].startswith(
        "text/event-stream"
    )
    events = responses_events(reply.text)
    kinds = [e["type"] for e in events]
    deltas = kinds.count("response.output_text.delta")
    assert deltas >= 2
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * deltas,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    done = next(e for e in events if e["type"] == "response.output_text.done")
    assert done["text"] == text and "one two" in text
    final = events[-1]["response"]
    assert final["output"][0]["content"][0]["text"] == text
    assert (await api.get(f"/v1/responses/{final['id']}")).json() == final


async def test_previous_response_carries_context_not_instructions(api: httpx.AsyncClient) -> None:
    first = (
        await api.post(
            "/v1/responses",
            json={"model": "fake-chat", "input": "my name is Ada", "instructions": "Be kind."},
        )
    ).json()
    second = await api.post(
        "/v1/responses",
        json={
            "model": "fake-chat",
            "input": "what is my name?",
            "previous_response_id": first["id"],
        },
    )
    assert second.status_code == 200, second.text
    assert second.json()["previous_response_id"] == first["id"]
    request = FakeEngine.calls[-1]
    roles = [(m.role, m.content) for m in request.messages]
    assert roles[0] == ("user", "my name is Ada")  # the first request's instructions stay there
    assert roles[1][0] == "assistant" and "Ada" in (roles[1][1] or "")
    assert roles[2] == ("user", "what is my name?")


async def test_function_call_round_trip(api: httpx.AsyncClient) -> None:
    first = await api.post(
        "/v1/responses",
        json={
            "model": "fake-chat",
            "input": "weather in Paris?",
            "tools": [WEATHER],
            "tool_choice": "required",
        },
    )
    assert first.status_code == 200, first.text
    [call] = first.json()["output"]
    assert call["type"] == "function_call" and call["name"] == "get_weather"
    assert call["call_id"].startswith("call_") and json.loads(call["arguments"]) == {
        "city": "Paris"
    }
    second = await api.post(
        "/v1/responses",
        json={
            "model": "fake-chat",
            "previous_response_id": first.json()["id"],
            "input": [
                {"type": "function_call_output", "call_id": call["call_id"], "output": "22 C"}
            ],
            "tools": [WEATHER],
        },
    )
    assert second.status_code == 200, second.text
    messages = FakeEngine.calls[-1].messages
    assert messages[-2].role == "assistant" and messages[-2].tool_calls[0].id == call["call_id"]
    assert messages[-1].role == "tool" and messages[-1].content == "22 C"
    assert messages[-1].name == "get_weather"


async def test_stream_function_call_events(api: httpx.AsyncClient) -> None:
    reply = await api.post(
        "/v1/responses",
        json={
            "model": "fake-chat",
            "input": "weather?",
            "tools": [WEATHER],
            "tool_choice": {"type": "function", "name": "get_weather"},
            "stream": True,
        },
    )
    kinds = [e["type"] for e in responses_events(reply.text)]
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]


async def test_structured_output_and_store_false(api: httpx.AsyncClient) -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    reply = await api.post(
        "/v1/responses",
        json={
            "model": "fake-chat",
            "input": "answer",
            "store": False,
            "text": {"format": {"type": "json_schema", "name": "answer", "schema": schema}},
        },
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert isinstance(json.loads(body["output"][0]["content"][0]["text"])["ok"], bool)
    assert body["text"]["format"]["type"] == "json_schema" and body["store"] is False
    assert FakeEngine.calls[-1].response_format is not None
    assert_error(await api.get(f"/v1/responses/{body['id']}"), 404)


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"model": "nope", "input": "hi"}, 404, "model"),
        ({"model": "fake-chat", "input": ""}, 400, "input"),
        ({"model": "fake-chat", "input": "hi", "previous_response_id": "resp_x"}, 404,
         "previous_response_id"),
        ({"model": "fake-chat", "input": "hi", "tools": [{"type": "web_search"}]}, 400,
         "tools.0.type"),
        ({"model": "fake-chat", "input": [{"type": "item_reference", "id": "x"}]}, 400,
         "input.0.type"),
        ({"model": "fake-chat", "input": [{"role": "user", "content": [{"type": "input_image"}]}]},
         400, "input.0.content.0"),
        ({"model": "fake-chat", "input": "hi", "background": True}, 400, "background"),
        ({"model": "fake-chat", "input": "hi", "text": {"format": {"type": "json_schema"}}}, 400,
         "text.format.schema"),
        ({"model": "fake-chat", "input": "hi", "tool_choice": "required"}, 400, "tool_choice"),
    ],
)  # fmt: skip
async def test_bad_requests(
    api: httpx.AsyncClient, body: dict[str, Any], status: int, param: str
) -> None:
    error = assert_error(await api.post("/v1/responses", json=body), status)
    assert error["param"] == param


async def test_keep_alive_field_is_checked(api: httpx.AsyncClient) -> None:
    reply = await api.post(
        "/v1/responses", json={"model": "fake-chat", "input": "hi", "keep_alive": "soon"}
    )
    assert_error(reply, 400)


def test_store_bounds_and_expiry(tmp_path: Path) -> None:
    store = ResponseStore(tmp_path / "r.sqlite", max_rows=3)
    for i in range(5):
        store.put({"id": f"resp_{i}", "output": []}, [{"id": f"msg_{i}"}])
    assert store.count() == 3
    assert store.get("resp_0") is None and store.get("resp_1") is None
    kept = store.get("resp_4")
    assert kept is not None and kept.context == [{"id": "msg_4"}]
    store.close()
    reopened = ResponseStore(tmp_path / "r.sqlite", ttl_s=-1)  # rows written now expire at once
    assert reopened.get("resp_4") is not None  # old rows keep their own expiry
    reopened.put({"id": "resp_new", "output": []}, [])
    assert reopened.get("resp_new") is None
    reopened.close()
    by_size = ResponseStore(tmp_path / "s.sqlite", max_bytes=200)
    for i in range(4):
        by_size.put({"id": f"resp_{i}", "output": ["x" * 60]}, [])
    assert by_size.count() < 4 and by_size.get("resp_3") is not None
    by_size.close()
