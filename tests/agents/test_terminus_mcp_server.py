"""Terminus's own MCP server, driven by the official ``mcp`` client SDK."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from terminus import Terminus
from terminus.mcp import build_server

pytestmark = pytest.mark.real

SRC = str(Path(__file__).resolve().parents[2] / "src")
TOOLS = {"chat", "rag_search", "rag_ask", "transcribe", "speak", "ocr", "translate", "embed"}


@pytest.fixture(scope="module")
def terminus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Terminus]:
    home = tmp_path_factory.mktemp("terminus-mcp")
    with Terminus(home=home, allow_download=False, memory_budget="2G") as client:
        client.load_model("smollm2-135m-instruct", context_length=1024, parallel=1, threads=1)
        yield client


async def test_tools_are_listed_and_chat_embed_answer(terminus: Terminus) -> None:
    server = build_server(terminus, chat_model="smollm2-135m-instruct")
    async with Client(server) as client:
        listed = {t.name: t for t in (await client.list_tools()).tools}
        assert set(listed) == TOOLS
        assert listed["embed"].input_schema["properties"]["texts"]["type"] == "array"

        chat = await client.call_tool(
            "chat",
            {
                "prompt": "What is the capital of France?",
                "system": "You are a helpful assistant.",
                "max_tokens": 24,
                "temperature": 0,
            },
        )
        assert not chat.is_error
        assert "Paris" in chat.content[0].text

        embedded = await client.call_tool("embed", {"texts": ["a cat", "a dog"]})
        assert not embedded.is_error
        vectors = embedded.structured_content["vectors"]
        assert len(vectors) == 2 and len(vectors[0]) == 384


async def test_bad_input_is_a_tool_error_with_the_message(
    terminus: Terminus, tmp_path: Path
) -> None:
    async with Client(build_server(terminus)) as client:
        missing = await client.call_tool("ocr", {"image_path": str(tmp_path / "none.png")})
        assert missing.is_error and "no such file" in missing.content[0].text
        unknown = await client.call_tool("rag_search", {"workspace": "nowhere", "query": "x"})
        assert unknown.is_error and "no workspace named 'nowhere'" in unknown.content[0].text
        empty = await client.call_tool("embed", {"texts": []})
        assert empty.is_error and "must not be empty" in empty.content[0].text


async def test_rag_search_over_a_workspace(terminus: Terminus) -> None:
    from terminus.rag.workspace import Workspace

    workspace = Workspace(terminus, "notes")
    workspace.ingest_text("The lighthouse keeper's cat is called Biscuit.", source="cat.txt")
    workspace.ingest_text("Tides at the harbour peak at noon on Sundays.", source="tides.txt")
    workspace.close()
    async with Client(build_server(terminus)) as client:
        found = await client.call_tool(
            "rag_search", {"workspace": "notes", "query": "what is the cat's name", "top_k": 1}
        )
        assert not found.is_error
        hits = found.structured_content["result"]
        assert "Biscuit" in hits[0]["text"] and hits[0]["source"].startswith("cat.txt")


async def test_stdio_server_from_the_command_line(terminus: Terminus) -> None:
    env = {**os.environ, "PYTHONPATH": SRC, "TERMINUS_HOME": str(terminus.home)}
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "terminus.cli.main", "--offline", "mcp"], env=env
    )
    async with Client(params) as client:
        assert {t.name for t in (await client.list_tools()).tools} == TOOLS
        result = await client.call_tool("embed", {"texts": ["hello"]})
        assert not result.is_error
        assert len(json.loads(result.content[0].text)["vectors"][0]) == 384


def test_streamable_http_server_from_the_command_line(terminus: Terminus) -> None:
    import socket
    import subprocess
    import time

    from terminus.agents import McpServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": SRC, "TERMINUS_HOME": str(terminus.home)}
    command = [sys.executable, "-m", "terminus.cli.main", "--offline", "mcp"]
    process = subprocess.Popen(
        [*command, "--transport", "http", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.2)
        with McpServer(f"http://127.0.0.1:{port}/mcp") as server:
            # the workspaces resource makes one more tool
            assert {t.name for t in server.tools()} == TOOLS | {"read_resource"}
            text = server.call("embed", {"texts": ["hello"]})
            assert text.startswith('{"model": "all-minilm-l6-v2", "vectors": [[')
            assert "[cut: " in text  # 384 floats are more than a small model should read
    finally:
        process.terminate()
        process.wait(10)


async def test_workspaces_are_resources_and_prompts_use_them(terminus: Terminus) -> None:
    from mcp.shared.exceptions import MCPError

    from terminus.rag.workspace import Workspace

    workspace = Workspace(terminus, "library")
    workspace.ingest_text("The Sylvan river is 412 km long.", source="rivers.txt")
    workspace.close()
    async with Client(build_server(terminus)) as client:
        listed = [str(r.uri) for r in (await client.list_resources()).resources]
        assert listed == ["terminus://workspaces"]
        templates = (await client.list_resource_templates()).resource_templates
        assert {t.uri_template for t in templates} == {
            "terminus://workspaces/{workspace}/documents",
            "terminus://workspaces/{workspace}/documents/{document}",
        }
        rows = json.loads((await client.read_resource("terminus://workspaces")).contents[0].text)
        library = next(r for r in rows if r["name"] == "library")
        assert library["documents"] == 1
        documents = json.loads((await client.read_resource(library["uri"])).contents[0].text)
        assert [d["source"] for d in documents] == ["rivers.txt"]
        text = (await client.read_resource(documents[0]["uri"])).contents[0].text
        assert text == "The Sylvan river is 412 km long."
        with pytest.raises(MCPError, match="no document 'nosuch'"):
            await client.read_resource("terminus://workspaces/library/documents/nosuch")

        prompts = {p.name for p in (await client.list_prompts()).prompts}
        assert prompts == {"ask_workspace", "summarize_document"}
        summary = await client.get_prompt(
            "summarize_document", {"workspace": "library", "document": "rivers.txt"}
        )
        assert "(rivers.txt)" in summary.messages[0].content.text
        assert "412 km" in summary.messages[0].content.text
        ask = await client.get_prompt("ask_workspace", {"workspace": "library", "question": "x?"})
        assert "rag_search" in ask.messages[0].content.text
