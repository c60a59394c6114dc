"""MCP servers as agent tools, through the official ``mcp`` SDK.

The SDK is asyncio; the tool loop is not. Each server gets one event-loop
thread that owns the connection for its whole life (anyio wants a connection
opened and closed by the same task); tool calls are handed to that loop and
waited for with a timeout, so a hung or dead server never takes the loop with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shlex
import tempfile
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from terminus.agents.mcp_resources import (
    READ_RESOURCE,
    prompt_messages,
    resource_text,
    resource_tool_description,
    resource_tool_schema,
)
from terminus.agents.tools import DEFAULT_TIMEOUT_S, AgentTool, ToolFailure, result_text
from terminus.errors import InvalidParameterError, ToolServerError
from terminus.types import CancelToken, Message

START_TIMEOUT_S = 60.0


def _sdk() -> Any:
    try:
        import mcp
    except ImportError as exc:
        raise ToolServerError(
            "MCP support needs the mcp package",
            hint="pip install 'terminus-sdk[agents]'",
        ) from exc
    return mcp


class McpServer:
    """An MCP server whose tools an agent may call.

    ``McpServer("npx -y @modelcontextprotocol/server-filesystem /data")`` starts a
    stdio server; ``McpServer("http://127.0.0.1:8000/mcp")`` connects to a
    streamable-HTTP one. ``only`` keeps the named tools, ``dangerous`` marks tools
    that need approval (``True`` for all; by default those the server itself
    annotates as destructive), ``prefix`` renames tools ``prefix.name``.

    A server's resources become one more tool, ``read_resource(uri)`` (its URIs listed in
    the description and allowed by the schema), unless ``resources=False``;
    :meth:`read_resource` reads one directly. Its prompts are listed by :meth:`prompts`
    and fetched as messages by :meth:`prompt`, ready for ``Terminus.agent``.
    """

    def __init__(
        self,
        target: str | Sequence[str],
        *,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        only: Sequence[str] | None = None,
        dangerous: bool | Sequence[str] | None = None,
        prefix: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        resources: bool = True,
    ) -> None:
        if isinstance(target, str):
            target = target.strip()
            if not target:
                raise InvalidParameterError("an MCP server needs a command or a URL")
            self.url: str | None = target if target.startswith(("http://", "https://")) else None
            self.command = [] if self.url else shlex.split(target)
        else:
            self.url = None
            self.command = list(target)
            if not self.command:
                raise InvalidParameterError("an MCP server needs a command or a URL")
        self.env = env
        self.cwd = cwd
        self.only = set(only) if only is not None else None
        self.dangerous = dangerous
        self.prefix = prefix
        self.timeout_s = timeout_s
        self.offer_resources = resources
        self._resources: list[Any] = []
        self._prompts: list[Any] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: Any = None
        self._listing: list[Any] = []
        self._ready = threading.Event()
        self._closing: asyncio.Event | None = None
        self._failure: BaseException | None = None
        self._stopped = threading.Event()
        self._stderr: Any = None

    def __repr__(self) -> str:
        return f"McpServer({self.url or shlex.join(self.command)!r})"

    @property
    def label(self) -> str:
        return self.url or (self.command[0] if self.command else "?")

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> McpServer:
        """Start (or connect to) the server and list its tools; idempotent."""
        if self._thread is not None:
            self._raise_if_failed()
            return self
        # the server's stderr, kept for the error message when it fails to start
        self._stderr = tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace")  # noqa: SIM115
        self._thread = threading.Thread(target=self._run_loop, name="terminus-mcp", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            self.close()
            raise ToolServerError(
                f"MCP server {self.label} did not answer within {START_TIMEOUT_S:g} s"
            )
        try:
            self._raise_if_failed()
        except ToolServerError:
            self.close()
            raise
        return self

    def close(self) -> None:
        loop, closing = self._loop, self._closing
        if loop is not None and closing is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop already stopped
                loop.call_soon_threadsafe(closing.set)
        if self._thread is not None:
            self._thread.join(10)
        if self._stderr is not None:
            self._stderr.close()

    def __enter__(self) -> McpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run_loop(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        finally:
            self._stopped.set()
            self._ready.set()
            loop.close()

    async def _serve(self) -> None:
        mcp = _sdk()
        self._closing = asyncio.Event()
        try:
            async with mcp.Client(self._transport(mcp)) as client:
                self._client = client
                self._listing = await _list_all_tools(client)
                capabilities = client.server_capabilities
                if capabilities.resources is not None:
                    self._resources = await _list_all(client.list_resources, "resources")
                if capabilities.prompts is not None:
                    self._prompts = await _list_all(client.list_prompts, "prompts")
                self._ready.set()
                await self._closing.wait()
        except BaseException as exc:  # reported to callers; the thread must not die silently
            self._failure = exc
        finally:
            self._client = None

    def _transport(self, mcp: Any) -> Any:
        if self.url is not None:
            from mcp.client.streamable_http import streamable_http_client

            return streamable_http_client(self.url)
        from mcp.client.stdio import stdio_client

        params = mcp.StdioServerParameters(
            command=self.command[0], args=self.command[1:], env=self.env, cwd=self.cwd
        )
        return stdio_client(params, errlog=self._stderr)

    def _raise_if_failed(self) -> None:
        if self._failure is not None or self._client is None:
            detail = _describe(self._failure) if self._failure else "it stopped"
            raise ToolServerError(
                f"MCP server {self.label} is not available: {detail}",
                hint=self._stderr_tail() or None,
            )

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        try:
            self._stderr.seek(0)
            text = self._stderr.read()
        except (ValueError, OSError):
            return ""
        lines = [line for line in text.strip().splitlines() if line.strip()]
        return " | ".join(lines[-3:])[:300]

    # -- tools ----------------------------------------------------------------------

    def tools(self) -> list[AgentTool]:
        self.start()
        out = []
        for spec in self._listing:
            if self.only is not None and spec.name not in self.only:
                continue
            name = f"{self.prefix}.{spec.name}" if self.prefix else spec.name
            out.append(
                AgentTool(
                    name=name,
                    description=(spec.description or "").strip(),
                    parameters=dict(spec.input_schema or {"type": "object", "properties": {}}),
                    invoke=self._invoker(spec.name),
                    dangerous=self._is_dangerous(spec),
                    timeout_s=self.timeout_s,
                    source=f"mcp:{self.label}",
                )
            )
        wanted = self.only is None or READ_RESOURCE in self.only
        if self.offer_resources and self._resources and wanted:
            out.append(self._resource_tool())
        return out

    # -- resources and prompts ------------------------------------------------------

    def resources(self) -> list[Any]:
        """The server's resources (``mcp.types.Resource``: ``uri``, ``name``, ``description``…)."""
        self.start()
        return list(self._resources)

    def read_resource(self, uri: str, *, timeout: float | None = None) -> str:
        """A resource's text (binary parts are named, not included); failures raise ``ToolFailure``."""
        client = self._client
        if client is None:
            raise ToolFailure("server_error", f"MCP server {self.label} is not running")
        result = self._wait(client.read_resource(uri), timeout, None)
        return result_text(resource_text(result))

    def prompts(self) -> list[Any]:
        """The server's prompts (``mcp.types.Prompt``: ``name``, ``description``, ``arguments``)."""
        self.start()
        return list(self._prompts)

    def prompt(self, name: str, arguments: dict[str, str] | None = None) -> list[Message]:
        """The prompt's messages, as Terminus messages (``t.agent(server.prompt(...), ...)``)."""
        self.start()
        if name not in {p.name for p in self._prompts}:
            known = ", ".join(p.name for p in self._prompts) or "none"
            raise InvalidParameterError(f"MCP server {self.label} has no prompt {name!r} ({known})")
        client = self._client
        if client is None:
            raise ToolServerError(f"MCP server {self.label} is not running")
        try:
            result = self._wait(client.get_prompt(name, arguments or {}), None, None)
        except ToolFailure as exc:
            raise ToolServerError(
                f"MCP server {self.label}: prompt {name!r}: {exc.message}"
            ) from None
        return prompt_messages(result)

    def _resource_tool(self) -> AgentTool:
        name = f"{self.prefix}.{READ_RESOURCE}" if self.prefix else READ_RESOURCE
        return AgentTool(
            name=name,
            description=resource_tool_description(self._resources),
            parameters=resource_tool_schema(self._resources),
            invoke=lambda arguments, timeout, cancel: self.read_resource(
                str(arguments.get("uri", "")), timeout=timeout
            ),
            timeout_s=self.timeout_s,
            source=f"mcp:{self.label}",
        )

    def _is_dangerous(self, spec: Any) -> bool:
        if isinstance(self.dangerous, bool):
            return self.dangerous
        if self.dangerous is not None:
            return spec.name in set(self.dangerous)
        notes = spec.annotations
        return bool(notes is not None and notes.destructive_hint and not notes.read_only_hint)

    def _invoker(self, remote_name: str) -> Any:
        def invoke(arguments: dict[str, Any], timeout: float, cancel: CancelToken) -> str:
            return self.call(remote_name, arguments, timeout=timeout, cancel=cancel)

        return invoke

    def call(
        self,
        name: str,
        arguments: dict[str, Any],
        *,
        timeout: float | None = None,
        cancel: CancelToken | None = None,
    ) -> str:
        """Call one tool and return its text; failures raise :class:`ToolFailure`."""
        client = self._client
        if client is None:
            raise ToolFailure("server_error", f"MCP server {self.label} is not running")
        return _result_text(self._wait(client.call_tool(name, arguments), timeout, cancel))

    def _wait(self, coro: Any, timeout: float | None, cancel: CancelToken | None) -> Any:
        """Run ``coro`` on the server's loop; wait at most ``timeout`` (ToolFailure otherwise)."""
        loop = self._loop
        if loop is None or self._stopped.is_set():
            coro.close()
            raise ToolFailure("server_error", f"MCP server {self.label} is not running")
        limit = self.timeout_s if timeout is None else timeout
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, loop)
        waited = 0.0
        while True:
            try:
                result = future.result(0.05)
                break
            except TimeoutError:
                waited += 0.05
                if self._stopped.is_set():
                    future.cancel()
                    raise ToolFailure(
                        "server_error", f"MCP server {self.label} stopped during the call"
                    ) from None
                if cancel is not None and cancel.cancelled:
                    future.cancel()
                    raise ToolFailure("raised", "cancelled") from None
                if waited >= limit:
                    future.cancel()
                    raise ToolFailure("timeout", f"no result within {limit:g} s") from None
            except Exception as exc:
                raise ToolFailure("server_error", _describe(exc)) from None
        return result


async def _list_all(list_page: Any, field: str) -> list[Any]:
    items: list[Any] = []
    cursor = None
    while True:
        page = await list_page(cursor=cursor)
        items.extend(getattr(page, field))
        cursor = page.next_cursor
        if not cursor:
            return items


async def _list_all_tools(client: Any) -> list[Any]:
    tools: list[Any] = []
    cursor = None
    while True:
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            return tools


def _result_text(result: Any) -> str:
    parts = [block.text for block in result.content if getattr(block, "type", "") == "text"]
    others = [block.type for block in result.content if getattr(block, "type", "") != "text"]
    if result.is_error:
        raise ToolFailure("raised", " ".join(parts) or "the tool reported an error")
    if parts:
        text = _compact("\n".join(parts))
    elif result.structured_content is not None:
        text = json.dumps(result.structured_content, ensure_ascii=False)
    elif others:
        text = f"[{', '.join(others)} content]"
    else:
        text = ""
    return result_text(text)


def _compact(text: str) -> str:
    """JSON text without its indentation (servers often indent; small contexts pay for it)."""
    if not text.lstrip().startswith(("{", "[")):
        return text
    try:
        return json.dumps(json.loads(text), ensure_ascii=False)
    except ValueError:
        return text


def _describe(exc: BaseException) -> str:
    """The innermost useful message (anyio wraps failures in exception groups)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
