"""Agents: a tool loop over any Terminus model, with Python and MCP tools.

>>> from terminus import Terminus
>>> def add(a: int, b: int) -> int:
...     "Add two integers."
...     return a + b
>>> with Terminus() as t:
...     print(t.agent("What is 2 + 40?", model="qwen", tools=[add]).text)
"""

from terminus.agents.events import AgentDone, AgentResult, ToolResultEvent, collect_agent_result
from terminus.agents.loop import Agent
from terminus.agents.mcp_client import McpServer
from terminus.agents.peer_host import OfferedTools
from terminus.agents.peer_tools import PeerTools, peer_tools
from terminus.agents.run import AgentRun, AsyncAgentRun
from terminus.agents.tools import AgentTool, ToolFailure, function_tool, tool

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
