"""Agent events: a completion's events plus what happened to each tool call.

An agent run streams the model's own events (content, thinking, tool calls,
stats) step after step, a :class:`ToolResultEvent` after each call it ran, and
one :class:`AgentDone` at the end.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from terminus.types import ContentDelta, Stats, ToolCall, ToolCallEvent

_FROZEN = ConfigDict(frozen=True, extra="forbid")

#: Why a tool call produced no normal result; the model sees the message either way.
ToolErrorKind = Literal[
    "raised", "timeout", "bad_result", "unknown_tool", "bad_arguments", "denied", "server_error"
]
AgentStopReason = Literal["answer", "step_limit", "cancelled", "error"]


class ToolResultEvent(BaseModel):
    model_config = _FROZEN
    type: Literal["tool_result"] = "tool_result"
    call: ToolCall
    #: The text the model sees: the tool's JSON (or text) result, or the error message.
    content: str
    error: ToolErrorKind | None = None
    elapsed_s: float = 0.0


class AgentDone(BaseModel):
    model_config = _FROZEN
    type: Literal["agent_done"] = "agent_done"
    stop_reason: AgentStopReason
    steps: int
    error: str | None = None


class AgentResult(BaseModel):
    """A whole agent run, folded from its events."""

    model_config = _FROZEN
    text: str
    stop_reason: AgentStopReason
    steps: int
    tool_calls: tuple[ToolCall, ...] = ()
    tool_results: tuple[ToolResultEvent, ...] = ()
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


def collect_agent_result(events: Iterable[Any]) -> AgentResult:
    """Fold a run's events; the answer is the text after the last tool result."""
    text: list[str] = []
    calls: list[ToolCall] = []
    results: list[ToolResultEvent] = []
    prompt = completion = 0
    done: AgentDone | None = None
    for event in events:
        if isinstance(event, ContentDelta):
            text.append(event.text)
        elif isinstance(event, ToolCallEvent):
            calls.append(event.call)
        elif isinstance(event, ToolResultEvent):
            results.append(event)
            text.clear()
        elif isinstance(event, Stats):
            prompt += event.prompt_tokens
            completion += event.completion_tokens
        elif isinstance(event, AgentDone):
            done = event
    if done is None:
        done = AgentDone(stop_reason="error", steps=0, error="run ended without a done event")
    return AgentResult(
        text="".join(text).strip(),
        stop_reason=done.stop_reason,
        steps=done.steps,
        tool_calls=tuple(calls),
        tool_results=tuple(results),
        error=done.error,
        prompt_tokens=prompt,
        completion_tokens=completion,
    )
