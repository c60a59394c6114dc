"""Agents: a tool loop over any Terminus model, with Python and MCP tools.

>>> from terminus import Terminus
>>> def add(a: int, b: int) -> int:
...     "Add two integers."
...     return a + b
>>> with Terminus() as t:
...     print(t.agent("What is 2 + 40?", model="qwen", tools=[add]).text)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from terminus.agents.events import AgentDone, AgentResult, ToolResultEvent, collect_agent_result
from terminus.agents.loop import Agent
from terminus.agents.run import AgentRun, AsyncAgentRun
from terminus.agents.tools import AgentTool, ToolFailure, function_tool, tool

if TYPE_CHECKING:
    from terminus.agents.mcp_client import McpServer
    from terminus.agents.peer_client import PeerTools, peer_tools
    from terminus.agents.peer_host import OfferedTools

# MCP and peer tools bring the p2p stack and NumPy (~0.2 s): imported when first named, so
# every client (and `terminus run`) does not pay for them. No submodule may share one of
# these names: importing it would set the package attribute to the module.
_LAZY = {
    "McpServer": "terminus.agents.mcp_client",
    "OfferedTools": "terminus.agents.peer_host",
    "PeerTools": "terminus.agents.peer_client",
    "peer_tools": "terminus.agents.peer_client",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'terminus.agents' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "Agent",
    "AgentDone",
    "AgentResult",
    "AgentRun",
    "AgentTool",
    "AsyncAgentRun",
    "McpServer",
    "OfferedTools",
    "PeerTools",
    "ToolFailure",
    "ToolResultEvent",
    "collect_agent_result",
    "function_tool",
    "peer_tools",
    "tool",
]
