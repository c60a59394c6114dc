"""Peer tools between two processes on loopback: `terminus provide --tool … --mcp …` and a consumer.

The provider offers two Python functions and the tools of an MCP server written with the
`mcp` SDK, to one allowed key. The consumer (this process) lists and calls them like
local tools; the provider's rules (allow-list, single-use tokens, only named tools) hold.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from p2pkit import TERMINUS, Processes, free_port, send_raw, wait_for_file

from terminus import Terminus
from terminus.agents import Agent, AgentRun, PeerTools, ToolFailure, ToolResultEvent, peer_tools
from terminus.errors import PeerRefusedError
from terminus.p2p.identity import Identity, load_or_create_identity
from terminus.p2p.node import parse_node_ref
from terminus.p2p.ops import OPS, request_body
from terminus.p2p.tokens import issue_token
from terminus.p2p.tool_ops import ToolCallRequest
from terminus.types import (
    CancelToken,
    ChatEvent,
    ChatRequest,
    ContentDelta,
    Done,
    ToolCall,
    ToolCallEvent,
)

HERE = Path(__file__).parent
FACTS_SERVER = HERE.parent / "agents" / "facts_server.py"


class OfferingProvider:
    def __init__(self, procs: Processes, root: Path) -> None:
        self.home = root / "provider"
        self.consumer_home = root / "consumer"
        self.consumer = load_or_create_identity(self.consumer_home)
        ref_file = root / "provider.ref"
        self.proc = procs.start(
            [
                *TERMINUS,
                "--offline",
                "provide",
                "--tool",
                "offered_tools:capital_of",
                "--tool",
                "offered_tools:explode",
                "--mcp",
                f"{sys.executable} {FACTS_SERVER}",
                "--allow",
                self.consumer.node_id,
                "--listen",
                f"127.0.0.1:{free_port()}",
                "--ref-file",
                str(ref_file),
            ],
            self.home,
            "provider",
            PYTHONPATH=f"{HERE}:{Path(__file__).parents[2] / 'src'}",
        )
        self.ref = wait_for_file(ref_file, self.proc, timeout=90)
        self.procs = procs

    def call_log(self) -> list[dict[str, object]]:
        path = self.home / "p2p" / "tool-calls.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OfferingProvider]:
    root = tmp_path_factory.mktemp("peer-tools")
    procs = Processes(root / "logs")
    try:
        yield OfferingProvider(procs, root)
    finally:
        procs.kill_all()


def test_only_the_named_tools_are_listed_and_they_run_on_the_provider(
    provider: OfferingProvider,
) -> None:
    with peer_tools(provider.ref, home=provider.consumer_home) as peer:
        tools = {t.name: t for t in peer.tools()}
        assert {"capital_of", "explode", "lookup", "wipe"} <= set(tools)
        assert "secret" not in tools  # importable there, never named
        assert tools["capital_of"].parameters["required"] == ["country"]
        assert tools["wipe"].dangerous  # the MCP server marks it destructive; still needs approval
        assert peer.call("capital_of", {"country": "Ostland"}) == "Kerr"
        assert "412 km" in peer.call("lookup", {"topic": "river"})
        with pytest.raises(ToolFailure) as refused:
            peer.call("secret", {})
        assert refused.value.kind == "unknown_tool"
    calls = provider.call_log()
    assert [(c["tool"], c["peer"], c["error"]) for c in calls[-3:]] == [
        ("capital_of", provider.consumer.node_id, None),
        ("lookup", provider.consumer.node_id, None),
        ("secret", provider.consumer.node_id, "unknown_tool"),
    ]
    assert "called capital_of" in provider.procs.log("provider")


def test_a_tool_that_raises_on_the_provider_is_an_error_event_here(
    provider: OfferingProvider,
) -> None:
    def model(request: ChatRequest, cancel: CancelToken) -> Iterator[ChatEvent]:
        if not any(m.role == "tool" for m in request.messages):
            call = ToolCall(id="c1", name="explode", arguments={"reason": "test"})
            yield ToolCallEvent(call=call)
            yield Done(stop_reason="tool_calls")
        else:
            yield ContentDelta(text="The tool failed.")
            yield Done(stop_reason="stop")

    with PeerTools(provider.ref, home=provider.consumer_home, only=["explode"]) as peer:
        agent = Agent(model, "scripted", [peer])
        events = list(AgentRun(lambda cancel: agent.events("Blow it up", cancel)))
    results = [e for e in events if isinstance(e, ToolResultEvent)]
    assert len(results) == 1 and results[0].error == "raised"
    assert "RuntimeError: disk on fire (test)" in results[0].content
    assert parse_node_ref(provider.ref).node_id[:12] in results[0].content  # names the peer
    assert events[-1].stop_reason == "answer"
    assert provider.call_log()[-1]["error"] == "raised"


def test_an_unknown_key_is_refused(provider: OfferingProvider, tmp_path: Path) -> None:
    stranger = PeerTools(provider.ref, home=tmp_path, identity=Identity.generate())
    with pytest.raises(PeerRefusedError, match="does not serve key"):
        stranger.start()
    stranger.close()


def test_a_replayed_token_is_refused(provider: OfferingProvider) -> None:
    op = OPS["call_tool"]
    body = request_body(op, ToolCallRequest(name="capital_of", arguments={"country": "Sylvania"}))
    node_id = parse_node_ref(provider.ref).node_id
    token = issue_token(provider.consumer, node_id, op.name, body)
    header = {"op": op.name, "token": token.to_wire(), "body": body.decode()}
    first = send_raw(provider.consumer, provider.ref, header)
    assert first[0]["result"]["content"] == "Marsh Town"
    replayed = send_raw(provider.consumer, provider.ref, header)
    assert replayed[0]["error"]["code"] == "peer_refused"
    assert "replay" in replayed[0]["error"]["message"]
    runs = [c for c in provider.call_log() if c["arguments"] == '{"country": "Sylvania"}']
    assert len(runs) == 1  # the replay never reached the tool


def test_a_provider_without_tools_refuses_tool_requests(tmp_path: Path) -> None:
    from terminus.p2p.provider import Provider, ProviderPolicy

    consumer = Identity.generate()
    with Terminus(home=tmp_path / "p") as client:
        node = Provider(
            client.transport,
            Identity.generate(),
            client.catalog,
            [],
            ProviderPolicy(allow=frozenset({consumer.node_id})),
            listen="127.0.0.1:0",
        )
        ref = node.start()
        try:
            with pytest.raises(PeerRefusedError, match="offers no tools"):
                PeerTools(ref, home=tmp_path / "c", identity=consumer).start()
        finally:
            node.close()


@pytest.mark.real
def test_a_real_model_answers_with_a_peer_tool_from_the_cli(provider: OfferingProvider) -> None:
    from click.testing import CliRunner

    from terminus.cli.main import cli

    before = len(provider.call_log())
    result = CliRunner().invoke(
        cli,
        [
            "--home",
            str(provider.consumer_home),
            "--offline",
            "agent",
            "What is the capital of Ostland?",
            "--model",
            "qwen2.5-coder-0.5b-instruct",
            "--peer-tools",
            provider.ref,
            "--constrained",
            "--temperature",
            "0",
            "--seed",
            "42",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "→ capital_of(" in result.stderr and "← Kerr" in result.stderr
    assert "Kerr" in result.stdout and not result.stdout.lstrip().startswith("{")
    made = provider.call_log()[before:]
    assert ("capital_of", '{"country": "Ostland"}') in [(c["tool"], c["arguments"]) for c in made]
