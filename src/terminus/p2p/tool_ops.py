"""Peer tools on the wire: what a consumer may ask about the tools a provider offers.

A provider offers tools only when its operator names them (``terminus provide --tool
module:function --mcp CMD``). The provider does not know what a tool is; it hands these
requests to a :class:`ToolHost` (built in ``terminus.agents``), after the same checks as
any delegated request: an allowed key, a fresh single-use token bound to this body,
the concurrency limit.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

#: The failure kinds a tool call can end with (the agent loop's own, plus refusals).
ToolErrorKind = Literal[
    "raised", "timeout", "bad_result", "bad_arguments", "unknown_tool", "server_error"
]


class ToolListRequest(BaseModel):
    model_config = ConfigDict(frozen=True)


class PeerToolSpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=dict)
    dangerous: bool = False


class ToolListing(BaseModel):
    model_config = ConfigDict(frozen=True)

    tools: tuple[PeerToolSpec, ...] = ()


class ToolCallRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1, max_length=64)
    arguments: dict[str, Any] = Field(default_factory=dict)
    #: What the consumer waits at most; the provider's own limit wins when lower.
    timeout_s: float | None = Field(default=None, gt=0, le=600)


class ToolCallOutcome(BaseModel):
    """A call's result text, or the kind of failure and its message in ``content``."""

    model_config = ConfigDict(frozen=True)

    content: str
    error: ToolErrorKind | None = None
    elapsed_s: float = 0.0


class ToolHost(Protocol):
    """The tools a provider offers; each call names the peer that made it (for the log)."""

    def list_tools(self, request: ToolListRequest, peer: str) -> ToolListing: ...

    def call_tool(self, request: ToolCallRequest, peer: str) -> ToolCallOutcome: ...


TOOL_OPS = frozenset({"list_tools", "call_tool"})
