"""Terminus as an MCP server: its local capabilities as tools for any MCP host."""

from terminus.mcp.server import build_server, serve

__all__ = ["build_server", "serve"]
