"""The MCP client against real servers: one written with the SDK (stdio and HTTP), and the
published reference filesystem server from npm."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from scripted import ScriptedModel

from terminus.agents import Agent, AgentRun, McpServer, ToolFailure
from terminus.errors import InvalidParameterError, ToolServerError

SERVER = str(Path(__file__).with_name("facts_server.py"))


@pytest.fixture
def facts() -> Iterator[McpServer]:
    with McpServer([sys.executable, SERVER]) as server:
        yield server


def test_stdio_server_tools_are_listed_with_their_schemas(facts: McpServer) -> None:
    tools = {t.name: t for t in facts.tools()}
    assert {"lookup", "slow", "crash", "fail", "wipe"} <= set(tools)
    assert tools["lookup"].parameters["properties"]["topic"]["type"] == "string"
    assert "Freedonia" in tools["lookup"].description
    assert tools["wipe"].dangerous and not tools["lookup"].dangerous


def test_an_agent_uses_an_mcp_tool(facts: McpServer) -> None:
    model = ScriptedModel([("lookup", {"topic": "river"})], "The Sylvan, 412 km long.")
    result = AgentRun(lambda c: Agent(model, "m", [facts]).events("Longest river?", c)).result()
    assert result.tool_results[0].content == "The longest river in Freedonia is the Sylvan, 412 km."
    assert result.tool_results[0].error is None


def test_a_tool_error_from_the_server_is_reported(facts: McpServer) -> None:
    model = ScriptedModel([("fail", {})], "It failed.")
    result = AgentRun(lambda c: Agent(model, "m", [facts]).events("?", c)).result()
    assert result.tool_results[0].error == "raised"
    assert "no such record" in result.tool_results[0].content


def test_a_slow_tool_times_out_and_the_server_stays_usable(facts: McpServer) -> None:
    with pytest.raises(ToolFailure) as failure:
        facts.call("slow", {"seconds": 5}, timeout=0.5)
    assert failure.value.kind == "timeout"
    assert "Mount Ost" in facts.call("lookup", {"topic": "mountain"})


def test_a_server_that_dies_mid_call_is_reported(facts: McpServer) -> None:
    model = ScriptedModel([("crash", {})], [("lookup", {"topic": "river"})], "The server is gone.")
    result = AgentRun(lambda c: Agent(model, "m", [facts]).events("?", c)).result()
    assert [r.error for r in result.tool_results] == ["server_error", "server_error"]
    assert result.stop_reason == "answer" and result.text == "The server is gone."


def test_a_server_that_cannot_start_is_a_typed_error(tmp_path: Path) -> None:
    script = tmp_path / "broken.py"
    script.write_text("import sys; print('config file missing', file=sys.stderr); sys.exit(2)\n")
    with pytest.raises(ToolServerError) as error:
        McpServer([sys.executable, str(script)]).start()
    assert "config file missing" in (error.value.hint or "")


def test_only_keeps_the_named_tools() -> None:
    with McpServer([sys.executable, SERVER], only=["lookup"], prefix="facts") as server:
        assert [t.name for t in server.tools()] == ["facts.lookup"]


def test_resources_become_a_read_resource_tool(facts: McpServer) -> None:
    assert [str(r.uri) for r in facts.resources()] == ["facts://atlas"]
    reader = {t.name: t for t in facts.tools()}["read_resource"]
    assert reader.parameters["properties"]["uri"]["enum"] == ["facts://atlas"]
    assert "facts://atlas: the capitals of the region" in reader.description
    model = ScriptedModel([("read_resource", {"uri": "facts://atlas"})], "Kerr.")
    result = AgentRun(lambda c: Agent(model, "m", [facts]).events("Capital of Ostland?", c))
    [read] = result.result().tool_results
    assert read.error is None and "Ostland: Kerr" in read.content
    with pytest.raises(ToolFailure) as missing:
        facts.read_resource("facts://nowhere")
    assert missing.value.kind == "server_error" and "nowhere" in missing.value.message


def test_resources_can_be_left_out() -> None:
    with McpServer([sys.executable, SERVER], resources=False) as server:
        assert "read_resource" not in {t.name for t in server.tools()}
        assert server.read_resource("facts://atlas").startswith("Freedonia")  # still readable


def test_prompts_become_messages(facts: McpServer) -> None:
    [brief] = facts.prompts()
    assert brief.name == "brief" and [a.name for a in brief.arguments] == ["topic"]
    [message] = facts.prompt("brief", {"topic": "rivers"})
    assert message.role == "user"
    assert message.content == (
        "Write one sentence about the rivers of Freedonia, using the lookup tool."
    )
    with pytest.raises(InvalidParameterError, match="no prompt 'nosuch'.*brief"):
        facts.prompt("nosuch")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_streamable_http_server() -> None:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, SERVER, "http", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        with McpServer(f"http://127.0.0.1:{port}/mcp") as server:
            assert "lookup" in [t.name for t in server.tools()]
            assert "Sylvan" in server.call("lookup", {"topic": "river"})
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture(scope="module")
def npm_filesystem_server(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """@modelcontextprotocol/server-filesystem installed from the npm registry."""
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.skip("npm and node are not installed")
    folder = tmp_path_factory.mktemp("npm")
    done = subprocess.run(
        [
            "npm",
            "install",
            "--prefer-offline",
            "--no-audit",
            "--no-fund",
            "@modelcontextprotocol/server-filesystem@2026.8.31",
        ],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return folder / "node_modules" / ".bin" / "mcp-server-filesystem"


@pytest.mark.real
def test_published_filesystem_server(npm_filesystem_server: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "capitals.txt").write_text("The capital of Freedonia is Fredville.\n")
    with McpServer([str(npm_filesystem_server), str(data)], env={"PATH": os.environ["PATH"]}) as fs:
        names = [t.name for t in fs.tools()]
        assert "read_text_file" in names and "list_directory" in names
        model = ScriptedModel(
            [("read_text_file", {"path": str(data / "capitals.txt")})], "Fredville."
        )
        result = AgentRun(lambda c: Agent(model, "m", [fs]).events("Capital?", c)).result()
        assert "Fredville" in result.tool_results[0].content
        with pytest.raises(ToolFailure) as denied:
            fs.call("read_text_file", {"path": str(tmp_path / "elsewhere.txt")})
        assert denied.value.kind == "raised"
