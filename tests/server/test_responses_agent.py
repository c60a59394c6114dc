"""/v1/responses with server-side MCP tools: the agent loop runs them, in-process on fake models.

The server is configured with one MCP server (written with the `mcp` SDK, a real
subprocess); the fake model calls its first tool when a call is required.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from serverkit import assert_error, fake_card, running
from test_responses import WEATHER, responses_events

from terminus.client.sync import Terminus

FACTS_SERVER = Path(__file__).parents[1] / "agents" / "facts_server.py"


def mcp_tool(*allowed: str, label: str = "facts", **extra: Any) -> dict[str, Any]:
    return {
        "type": "mcp",
        "server_label": label,
        "allowed_tools": list(allowed),
        "require_approval": "never",
        **extra,
    }


@pytest.fixture
async def tools_api(
    make_app: Any, fake_client: Terminus, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    fake_client.catalog.register(
        fake_card(tmp_path / "w", "fake-facts", tool_arguments={"topic": "river"})
    )
    app = make_app(tool_servers=(("facts", f"{sys.executable} {FACTS_SERVER}"),))
    async with running(app) as http:
        yield http


async def test_the_server_runs_the_tool_and_answers_with_its_result(
    tools_api: httpx.AsyncClient,
) -> None:
    reply = await tools_api.post(
        "/v1/responses",
        json={
            "model": "fake-facts",
            "input": "How long is the longest river?",
            "tools": [mcp_tool("lookup")],
            "tool_choice": "required",
        },
    )
    assert reply.status_code == 200, reply.text
    response = reply.json()
    call, repeat, message = response["output"]
    assert call["type"] == "mcp_call" and call["server_label"] == "facts"
    assert call["name"] == "lookup" and call["arguments"] == '{"topic": "river"}'
    assert call["status"] == "completed" and "412 km" in call["output"]
    # the fake model asks again; the loop does not run a repeated call, it asks for the answer
    assert repeat["type"] == "mcp_call" and repeat["status"] == "incomplete"
    assert repeat["output"].startswith("not run") and repeat["error"] is None
    assert message["type"] == "message"
    assert "412 km" in message["content"][0]["text"]  # the answer step saw the tool's result
    assert response["status"] == "completed" and response["usage"]["output_tokens"] > 0
    stored = await tools_api.get(f"/v1/responses/{response['id']}")
    assert stored.json()["output"][0]["output"] == call["output"]


async def test_streamed_tool_calls_and_a_failing_tool(tools_api: httpx.AsyncClient) -> None:
    reply = await tools_api.post(
        "/v1/responses",
        json={
            "model": "fake-facts",
            "input": "Find the record",
            "tools": [mcp_tool("fail")],
            "tool_choice": "required",
            "stream": True,
        },
    )
    assert reply.status_code == 200, reply.text
    events = responses_events(reply.text)
    kinds = [e["type"] for e in events]
    start = kinds.index("response.output_item.added")
    assert kinds[start : start + 5] == [
        "response.output_item.added",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.mcp_call.in_progress",
        "response.mcp_call.failed",
    ]
    done = events[start + 5]
    assert done["type"] == "response.output_item.done"
    assert done["item"]["status"] == "failed"
    assert "no such record" in done["item"]["error"]["content"]
    assert kinds[-1] == "response.completed"


async def test_only_configured_servers_and_no_approvals(tools_api: httpx.AsyncClient) -> None:
    async def create(**body: Any) -> httpx.Response:
        return await tools_api.post(
            "/v1/responses", json={"model": "fake-facts", "input": "hi", **body}
        )

    unknown = await create(
        tools=[mcp_tool(label="elsewhere", server_url="http://198.51.100.7/mcp")]
    )
    assert assert_error(unknown, 400, "invalid_parameter")["param"] == "tools.0.server_label"
    assert "facts" in unknown.json()["error"]["message"]  # names what is configured
    mixed = await create(tools=[mcp_tool("lookup"), WEATHER])
    assert assert_error(mixed, 400, "unsupported_parameter")["param"] == "tools"
    approval = await create(tools=[mcp_tool("lookup", require_approval="always")])
    error = assert_error(approval, 400, "unsupported_parameter")
    assert error["param"] == "tools.0.require_approval"


async def test_the_configured_servers_are_listed(tools_api: httpx.AsyncClient) -> None:
    listing = (await tools_api.get("/terminus/v1/agent/tools")).json()["data"]
    assert [row["label"] for row in listing] == ["facts"]
    assert {"lookup", "fail", "wipe"} <= {t["name"] for t in listing[0]["tools"]}


async def test_the_openai_sdk_reads_the_mcp_calls(tools_api: httpx.AsyncClient) -> None:
    import openai
    from openai.types.responses.response_output_item import McpCall

    sdk = openai.AsyncOpenAI(
        base_url="http://localhost/v1", api_key="unused", http_client=tools_api
    )
    response = await sdk.responses.create(
        model="fake-facts",
        input="How long is the longest river?",
        tools=[mcp_tool("lookup")],  # type: ignore[list-item]
        tool_choice="required",
    )
    call = response.output[0]
    assert isinstance(call, McpCall) and call.output and "412 km" in call.output
    assert "412 km" in response.output_text
    stream = await sdk.responses.create(
        model="fake-facts",
        input="How long is the longest river?",
        tools=[mcp_tool("lookup")],  # type: ignore[list-item]
        tool_choice="required",
        stream=True,
    )
    kinds = [event.type async for event in stream]
    assert "response.mcp_call.completed" in kinds and kinds[-1] == "response.completed"
