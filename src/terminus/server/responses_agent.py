"""Server-side tools in the Responses API: ``{"type": "mcp", "server_label": …}`` runs the agent loop.

A request whose tools are MCP tools naming servers configured on this server
(``terminus serve --mcp LABEL=CMD``) is answered by the same tool loop as
``Terminus.agent``: the server calls the tools itself and the response carries each
call as an ``mcp_call`` output item (arguments, output or error), then the answer
message — OpenAI's shape for remote MCP tools, so the ``openai`` SDK reads it as is.
``tool_choice: "required"`` selects the loop's constrained mode (every step a
JSON-schema-constrained call; small models need it). Tools a server marks destructive
are refused: there is no one to approve them mid-request.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from terminus.agents import AgentDone, AgentTool, AsyncAgentRun, ToolResultEvent
from terminus.agents.deferred import TOOL_SEARCH
from terminus.server.errors import invalid, unsupported
from terminus.server.responses_convert import ResponsesRequest, new_item_id
from terminus.server.responses_encode import ResponseBuilder
from terminus.server.state import ServerState
from terminus.types import ChatEvent, Done, Message, Stats, ToolCallEvent

#: What an ``mcp_call`` the loop did not run says: a repeat of a call it had made (the loop
#: then asks for the answer instead), or a call left when the run ended.
_NOT_RUN = "not run: the same call was made before"

#: How an agent run's end maps onto a completion's stop reason (and so the response status).
_STOP = {"answer": "stop", "step_limit": "length", "cancelled": "cancelled", "error": "error"}
_SAMPLING = ("temperature", "top_p", "top_k", "min_p", "repeat_penalty", "seed")


def server_tool_specs(body: ResponsesRequest) -> list[dict[str, Any]]:
    """The request's ``mcp`` tools; 400 when they are mixed with client-side functions."""
    tools = body.tools or []
    mcp = [t for t in tools if t.get("type") == "mcp"]
    if mcp and len(mcp) != len(tools):
        raise unsupported("tools", "mixing server-side mcp tools with client-side functions")
    for i, spec in enumerate(mcp):
        approval = spec.get("require_approval", "never")
        if approval != "never":
            raise unsupported(
                f"tools.{i}.require_approval",
                "approval requests (this server runs only tools that need no approval)",
            )
    if mcp and isinstance(body.tool_choice, dict):
        raise unsupported("tool_choice", "naming one tool with server-side tools")
    return mcp


class AgentEvents:
    """An agent run as a completion-like stream: one summed ``Stats``, then a ``Done``."""

    def __init__(self, run: AsyncAgentRun) -> None:
        self.run = run

    def cancel(self) -> None:
        self.run.cancel()

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._events()

    async def _events(self) -> AsyncIterator[Any]:
        prompt = completion = 0
        total = 0.0
        async for event in self.run:
            if isinstance(event, Stats):
                prompt += event.prompt_tokens
                completion += event.completion_tokens
                total += event.total_s
                continue
            if isinstance(event, AgentDone):
                yield Stats(prompt_tokens=prompt, completion_tokens=completion, total_s=total)
                yield Done(stop_reason=_STOP[event.stop_reason], error=event.error)  # type: ignore[arg-type]
                return
            yield event


def start_agent(
    state: ServerState,
    body: ResponsesRequest,
    messages: list[Message],
    model: str,
    tools: dict[str, list[AgentTool]],
) -> AgentEvents:
    """Start the tool loop for this request (raises ``APIError`` on bad options)."""
    options: dict[str, Any] = {
        k: getattr(body, k) for k in _SAMPLING if getattr(body, k) is not None
    }
    if body.max_output_tokens is not None:
        if body.max_output_tokens < 1:
            raise invalid("max_output_tokens", "max_output_tokens must be at least 1")
        options["max_tokens"] = body.max_output_tokens
    if body.tool_choice == "none":
        flat: list[AgentTool] = []
    else:
        flat = [tool for found in tools.values() for tool in found]
    run = state.aclient.agent(
        messages,
        model=model,
        tools=flat,
        constrained=body.tool_choice == "required",
        # the request's instructions when given, else the loop's own tool-use prompt
        system=next((m.content for m in messages if m.role == "system" and m.content), None),
        **options,
    )
    return AgentEvents(run)


class AgentResponseBuilder(ResponseBuilder):
    """The response of an agent run: ``mcp_call`` items for tool calls, then the answer."""

    def __init__(
        self, body: ResponsesRequest, model: str, tools: dict[str, list[AgentTool]]
    ) -> None:
        super().__init__(body, model)
        self._labels = {t.name: label for label, found in tools.items() for t in found}
        self._calls: dict[str, dict[str, Any]] = {}

    def event(self, event: ChatEvent | Any) -> list[dict[str, Any]]:
        if isinstance(event, ToolCallEvent):
            return self._call_started(event)
        if isinstance(event, ToolResultEvent):
            return self._call_finished(event)
        return super().event(event)

    def _finish(self, done: Done) -> list[dict[str, Any]]:
        """Calls the loop did not run end ``incomplete`` before the response does."""
        events: list[dict[str, Any]] = []
        ran = {
            (i["name"], i["arguments"])
            for i in self._calls.values()
            if i["status"] != "in_progress"
        }
        for item in self._calls.values():
            if item["status"] == "in_progress":
                repeated = (item["name"], item["arguments"]) in ran
                item.update(status="incomplete", output=_NOT_RUN if repeated else None)
                index = self.output.index(item)
                events.append(
                    {"type": "response.output_item.done", "output_index": index, "item": dict(item)}
                )
        return events + super()._finish(done)

    def _call_started(self, event: ToolCallEvent) -> list[dict[str, Any]]:
        events = self._close_message("completed")
        call = event.call
        arguments = json.dumps(call.arguments, ensure_ascii=False)
        item: dict[str, Any] = {
            "id": new_item_id("mcp"),
            "type": "mcp_call",
            "server_label": self._labels.get(
                call.name, "terminus" if call.name == TOOL_SEARCH else ""
            ),
            "name": call.name,
            "arguments": arguments,
            "output": None,
            "error": None,
            "status": "in_progress",
            "approval_request_id": None,
        }
        index = len(self.output)
        self.output.append(item)
        self._calls[call.id] = item
        common = {"item_id": item["id"], "output_index": index}
        return [
            *events,
            {
                "type": "response.output_item.added",
                "output_index": index,
                "item": {**item, "arguments": ""},
            },
            {"type": "response.mcp_call_arguments.delta", **common, "delta": arguments},
            {"type": "response.mcp_call_arguments.done", **common, "arguments": arguments},
            {"type": "response.mcp_call.in_progress", **common},
        ]

    def _call_finished(self, event: ToolResultEvent) -> list[dict[str, Any]]:
        item = self._calls.get(event.call.id)
        if item is None:
            return []
        if event.error is None:
            item.update(output=event.content, status="completed")
        else:
            item.update(
                status="failed",
                error={"type": "mcp_tool_execution_error", "content": event.content},
            )
        index = self.output.index(item)
        common = {"item_id": item["id"], "output_index": index}
        kind = "response.mcp_call.completed" if event.error is None else "response.mcp_call.failed"
        return [
            {"type": kind, **common},
            {"type": "response.output_item.done", "output_index": index, "item": dict(item)},
        ]
