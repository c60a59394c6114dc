"""A small MCP server written with the official SDK, started by the tests as a subprocess.

Tools (one that fails, one that hangs, one that kills the server…), a resource and a prompt.

``python facts_server.py`` serves over stdio; ``python facts_server.py http PORT`` over
streamable HTTP on loopback.
"""

from __future__ import annotations

import os
import sys
import time

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

FACTS = {
    "river": "The longest river in Freedonia is the Sylvan, 412 km.",
    "mountain": "Mount Ost, 2,880 m.",
}

server = MCPServer("facts")


@server.tool()
def lookup(topic: str) -> str:
    """Look up a fact about Freedonia by topic (river, mountain)."""
    return FACTS.get(topic.lower(), f"no fact about {topic}")


@server.tool()
def slow(seconds: float) -> str:
    """Sleep, then answer."""
    time.sleep(seconds)
    return "awake"


@server.tool()
def crash() -> str:
    """Kill the server process in the middle of the call."""
    os._exit(3)


@server.tool()
def fail() -> str:
    """Raise an error."""
    raise ToolError("no such record")


@server.tool(annotations=ToolAnnotations(destructive_hint=True))
def wipe() -> str:
    """Erase everything (marked destructive)."""
    return "wiped"


@server.resource("facts://atlas", name="atlas", description="the capitals of the region")
def atlas() -> str:
    return "Freedonia: Fredville\nOstland: Kerr\nSylvania: Marsh Town\n"


@server.prompt()
def brief(topic: str) -> str:
    """Ask for a one-sentence brief on a topic."""
    return f"Write one sentence about the {topic} of Freedonia, using the lookup tool."


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run("stdio")
