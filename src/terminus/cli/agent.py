"""``terminus agent``: a tool loop from the shell, with MCP servers and Python functions."""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any

import click

from terminus.cli.context import CliState, pass_state
from terminus.errors import InvalidParameterError
from terminus.types import ContentDelta, ToolCall, ToolCallEvent


def import_tool(spec: str) -> Any:
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise InvalidParameterError(f"--tool takes module:function, not {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidParameterError(f"--tool {spec}: cannot import {module_name} ({exc})") from exc
    value = getattr(module, attribute, None)
    if value is None:
        raise InvalidParameterError(f"--tool {spec}: {module_name} has no {attribute}")
    return value


def _approver(yes: bool) -> Any:
    def approve(call: ToolCall) -> bool:
        if yes:
            return True
        if not sys.stdin.isatty():
            return False
        arguments = json.dumps(call.arguments, ensure_ascii=False)
        return click.confirm(f"allow {call.name}({arguments})?", default=False, err=True)

    return approve


@click.command()
@click.argument("prompt")
@click.option("-m", "--model", metavar="MODEL", help="Model id or alias [default: the default].")
@click.option(
    "--mcp",
    "servers",
    multiple=True,
    metavar="'CMD ARGS'|URL",
    help="An MCP server: a command to start (stdio) or an http(s) URL (repeatable).",
)
@click.option(
    "--tool",
    "functions",
    multiple=True,
    metavar="MODULE:FUNCTION",
    help="A Python function to offer as a tool (repeatable).",
)
@click.option(
    "--peer-tools",
    "peers",
    multiple=True,
    metavar="PEER",
    help="Use the tools a peer offers (terminus:node/… or a known node id; repeatable).",
)
@click.option("--max-steps", type=int, default=6, show_default=True, help="Model calls at most.")
@click.option(
    "--constrained", is_flag=True, help="Constrain every step to a JSON call (small models)."
)
@click.option(
    "--deferred/--no-deferred",
    default=None,
    help="Show tools through a tool_search tool [default: when more than 8].",
)
@click.option("--tool-timeout", type=float, default=30.0, show_default=True, help="Seconds.")
@click.option("-y", "--yes", is_flag=True, help="Approve tools marked dangerous without asking.")
@click.option("-s", "--system", metavar="TEXT", help="System prompt.")
@click.option("-t", "--temperature", type=float, help="0 is greedy.")
@click.option("--seed", type=int, help="Random seed.")
@click.option("-n", "--max-tokens", type=int, help="Tokens per step at most.")
@click.option("--json", "as_json", is_flag=True, help="Print events as JSON lines.")
@pass_state
def agent(
    state: CliState,
    prompt: str,
    model: str | None,
    servers: tuple[str, ...],
    functions: tuple[str, ...],
    peers: tuple[str, ...],
    max_steps: int,
    constrained: bool,
    deferred: bool | None,
    tool_timeout: float,
    yes: bool,
    system: str | None,
    temperature: float | None,
    seed: int | None,
    max_tokens: int | None,
    as_json: bool,
) -> None:
    """Answer PROMPT with a model that may call tools until it has the answer.

    \b
      terminus agent "What is 17*23?" --tool mytools:multiply
      terminus agent "What does notes.txt say?" \\
          --mcp "npx -y @modelcontextprotocol/server-filesystem ."
      terminus agent "…" --peer-tools terminus:node/…?addr=192.168.1.7:4433
    """
    from terminus.agents import AgentDone, McpServer, PeerTools, ToolResultEvent

    tools: list[Any] = [import_tool(spec) for spec in functions]
    started: list[McpServer | PeerTools] = []
    try:
        for target in servers:
            server = McpServer(target, timeout_s=tool_timeout)
            started.append(server.start())
            tools.append(server)
        for peer in peers:
            offered = PeerTools(peer, home=state.client().home, timeout_s=tool_timeout)
            started.append(offered)
            tools.append(offered.start())
        options: dict[str, Any] = {
            "temperature": temperature,
            "seed": seed,
            "max_tokens": max_tokens,
        }
        run = state.client().agent(
            prompt,
            model=model,
            tools=tools,
            max_steps=max_steps,
            constrained=constrained,
            deferred=deferred,
            approve=_approver(yes),
            tool_timeout_s=tool_timeout,
            system=system,
            **{k: v for k, v in options.items() if v is not None},
        )
        done: AgentDone | None = None
        for event in run:
            if as_json:
                click.echo(event.model_dump_json())
            elif isinstance(event, ContentDelta):
                click.echo(event.text, nl=False)
            elif isinstance(event, ToolCallEvent):
                arguments = json.dumps(event.call.arguments, ensure_ascii=False)
                click.echo(f"\n→ {event.call.name}({arguments})", err=True)
            elif isinstance(event, ToolResultEvent):
                mark = f"✗ {event.error}: " if event.error else "← "
                click.echo(f"{mark}{event.content[:300]}", err=True)
            if isinstance(event, AgentDone):
                done = event
        if not as_json:
            click.echo()
        if done is not None and done.stop_reason != "answer":
            click.echo(f"error: {done.error or done.stop_reason}", err=True)
            sys.exit(130 if done.stop_reason == "cancelled" else 1)
    finally:
        for connection in started:
            connection.close()
