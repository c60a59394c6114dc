"""The web chat with a tool server picked: the server's agent loop calls an MCP tool (a server
written with the `mcp` SDK) for Qwen2.5-Coder-0.5B, and the page shows the call, its result
and the answer that uses it — in Debian's Chromium against a live `terminus serve --mcp`."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from webkit import LiveServer, serve_live, shot

pytestmark = pytest.mark.real

FACTS_SERVER = Path(__file__).parents[1] / "agents" / "facts_server.py"
QWEN = "qwen2.5-coder-0.5b-instruct"


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    home = tmp_path_factory.mktemp("webapp-tools-home")
    with serve_live(home, ["--mcp", f"facts={sys.executable} {FACTS_SERVER}"]) as server:
        yield server


def test_chat_with_a_tool_server_shows_the_call_and_answers_with_its_result(
    page: Any, live_server: LiveServer
) -> None:
    page.goto(live_server.url + "/#chat")
    page.locator("#chat-model option").first.wait_for(state="attached")
    page.select_option("#chat-model", QWEN)
    page.locator("#chat-tool-facts").check()  # listed from the server's configured tools
    assert page.is_checked("#chat-tools-constrained")
    page.click(".settings summary")
    page.fill("#chat-temperature", "0")
    page.fill("#chat-max-tokens", "128")
    page.fill("#chat-input", "How long is the longest river in Freedonia?")
    page.click("#chat-send")
    reply = page.locator(".message.assistant").last
    call = reply.locator(".tool-call").first
    call.locator(".tool-result", has_text="412 km").wait_for()  # the result, as it arrives
    assert call.locator("summary").inner_text().startswith("facts · lookup(")
    assert call.get_attribute("data-status") == "completed"
    page.locator(".message.assistant.streaming").wait_for(state="detached")
    assert "412" in reply.locator(".content").inner_text()  # the answer uses the result
    shot(page, "chat-tools")
    with live_server.api() as api:
        saved = api.get("/terminus/v1/conversations").json()["data"]
        convo = api.get(f"/terminus/v1/conversations/{saved[0]['id']}").json()
    roles = [m["role"] for m in convo["messages"]]
    assert roles[0] == "user" and roles[-1] == "assistant" and "tool" in roles
    kept = json.loads(next(m["content"] for m in convo["messages"] if m["role"] == "tool"))
    assert kept["name"] == "lookup" and "412 km" in kept["output"]
