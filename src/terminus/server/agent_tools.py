"""Tool servers configured on this server, for the Responses API and the web chat.

``terminus serve --mcp LABEL=CMD`` (or ``ServerSettings.tool_servers``) names MCP servers
the server may run tools on. Clients refer to them by label only — a Responses
``{"type": "mcp", "server_label": LABEL}`` tool — so a request can never make the server
start a command or reach a URL its operator did not configure. Each server starts on
first use and stays connected until the app stops.

``GET /terminus/v1/agent/tools`` lists the labels and their tools (the web chat's picker).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request

from terminus.agents import AgentTool, McpServer
from terminus.errors import InvalidParameterError, ToolServerError
from terminus.server.errors import APIError


def parse_tool_server(spec: str) -> tuple[str, str]:
    """``LABEL=CMD ARGS`` or ``LABEL=URL`` → (label, target)."""
    label, sep, target = spec.partition("=")
    label, target = label.strip(), target.strip()
    if not sep or not label or not target:
        raise InvalidParameterError(f"--mcp takes LABEL=COMMAND or LABEL=URL, not {spec!r}")
    if not label.replace("_", "").replace("-", "").isalnum() or len(label) > 64:
        raise InvalidParameterError(f"tool server label {label!r}: letters, digits, '-', '_'")
    return label, target


class ServerToolbox:
    """The configured tool servers by label; each started on first use, closed with the app."""

    def __init__(self, servers: Sequence[tuple[str, str]] = ()) -> None:
        self._targets = dict(servers)
        self._open: dict[str, McpServer] = {}
        self._lock = threading.Lock()

    @property
    def labels(self) -> list[str]:
        return list(self._targets)

    def server(self, label: str) -> McpServer:
        """The connected server for ``label`` (blocking: run it on a worker thread)."""
        if label not in self._targets:
            raise KeyError(label)
        with self._lock:
            server = self._open.get(label)
            if server is None:
                server = McpServer(self._targets[label]).start()
                self._open[label] = server
            return server

    def tools(self, label: str, allowed: Sequence[str] | None = None) -> list[AgentTool]:
        found = self.server(label).tools()
        return [t for t in found if allowed is None or t.name in allowed]

    def close(self) -> None:
        with self._lock:
            servers, self._open = list(self._open.values()), {}
        for server in servers:
            server.close()


def toolbox(request: Request) -> ServerToolbox:
    box: ServerToolbox = request.app.state.toolbox
    return box


async def resolve_tools(
    box: ServerToolbox, specs: Sequence[dict[str, Any]], param: str = "tools"
) -> dict[str, list[AgentTool]]:
    """Responses ``mcp`` tools → the configured servers' tools, by label; 400 otherwise."""
    found: dict[str, list[AgentTool]] = {}
    for i, spec in enumerate(specs):
        label = spec.get("server_label")
        if not isinstance(label, str) or label not in box.labels:
            configured = ", ".join(box.labels) or "none (start the server with --mcp LABEL=CMD)"
            raise APIError(
                400,
                f"no tool server labelled {label!r} on this server; configured: {configured}",
                code="invalid_parameter",
                param=f"{param}.{i}.server_label",
            )
        allowed = spec.get("allowed_tools")
        if isinstance(allowed, dict):
            allowed = allowed.get("tool_names")
        if allowed is not None and not (
            isinstance(allowed, list) and all(isinstance(a, str) for a in allowed)
        ):
            raise APIError(
                400,
                "allowed_tools must be a list of tool names",
                code="invalid_parameter",
                param=f"{param}.{i}.allowed_tools",
            )
        try:
            found[label] = await asyncio.to_thread(box.tools, label, allowed)
        except ToolServerError as exc:
            raise APIError(502, exc.one_line(), code="tool_server_error") from exc
    return found


def add_agent_tool_routes(router: APIRouter) -> None:
    @router.get("/terminus/v1/agent/tools")
    async def list_tool_servers(request: Request) -> dict[str, Any]:
        box = toolbox(request)
        rows = []
        for label in box.labels:
            try:
                tools = await asyncio.to_thread(box.tools, label)
                listed = [{"name": t.name, "description": t.description} for t in tools]
                rows.append({"label": label, "tools": listed, "error": None})
            except ToolServerError as exc:
                rows.append({"label": label, "tools": [], "error": exc.one_line()})
        return {"object": "list", "data": rows}
