"""The tool loop on Qwen2.5-Coder-0.5B: real tool calls, and a prose answer that uses them."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from calctools import add, multiply
from click.testing import CliRunner

from terminus import Terminus
from terminus.agents import McpServer
from terminus.cli.main import cli

pytestmark = pytest.mark.real

QWEN = "qwen2.5-coder-0.5b-instruct"
GREEDY = {"temperature": 0.0, "seed": 42}
FACTS_SERVER = str(Path(__file__).with_name("facts_server.py"))


@pytest.fixture(scope="module")
def qwen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Terminus]:
    home = tmp_path_factory.mktemp("terminus-agent-qwen")
    client = Terminus(home=home, allow_download=False, memory_budget="3G")
    client.load_model(QWEN, context_length=4096, parallel=1, threads=1)
    yield client
    client.close()
    shutil.rmtree(home, ignore_errors=True)


def test_calculator_answer_is_prose_with_the_result(qwen: Terminus) -> None:
    result = qwen.agent(
        "What is 17.5 times 23?", model=QWEN, tools=[multiply, add], **GREEDY
    ).result()
    assert result.stop_reason == "answer"
    assert [(c.name, c.arguments) for c in result.tool_calls][0] == (
        "multiply",
        {"a": 17.5, "b": 23},
    )
    assert "402.5" in result.text
    assert not result.text.lstrip().startswith("{")  # a sentence, not a JSON call
    assert len(result.text.split()) >= 3


def test_fact_from_an_mcp_server_constrained(qwen: Terminus) -> None:
    with McpServer([sys.executable, FACTS_SERVER], only=["lookup"]) as facts:
        result = qwen.agent(
            "How long is the longest river in Freedonia?",
            model=QWEN,
            tools=[facts],
            constrained=True,
            **GREEDY,
        ).result()
    assert result.tool_results and result.tool_results[0].error is None
    assert "412" in result.text
    assert not result.text.lstrip().startswith("{")


def test_cli_agent_with_a_python_tool(qwen: Terminus) -> None:
    out = CliRunner().invoke(
        cli,
        [
            "--home",
            str(qwen.home),
            "--offline",
            "agent",
            "What is 12 times 11?",
            "--model",
            QWEN,
            "--tool",
            "calctools:multiply",
            "--temperature",
            "0",
            "--seed",
            "42",
        ],
    )
    assert out.exit_code == 0, out.output
    assert "132" in out.stdout
    assert "→ multiply" in out.stderr


def test_fact_from_an_mcp_resource_constrained(qwen: Terminus) -> None:
    with McpServer([sys.executable, FACTS_SERVER], only=["read_resource"]) as facts:
        result = qwen.agent(
            "What is the capital of Ostland?",
            model=QWEN,
            tools=[facts],
            constrained=True,
            **GREEDY,
        ).result()
    assert [(c.name, c.arguments) for c in result.tool_calls][0] == (
        "read_resource",
        {"uri": "facts://atlas"},
    )
    assert "Kerr" in result.text and not result.text.lstrip().startswith("{")
