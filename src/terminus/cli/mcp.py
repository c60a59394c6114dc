"""``terminus mcp``: serve Terminus's local capabilities to MCP hosts."""

from __future__ import annotations

import click

from terminus.cli.context import CliState, pass_state


@click.command("mcp")
@click.option(
    "--transport",
    type=click.Choice(["stdio", "http"]),
    default="stdio",
    show_default=True,
    help="stdio for a host that starts this command; http for streamable HTTP.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="HTTP: loopback only.")
@click.option("--port", type=int, default=8765, show_default=True, help="HTTP port.")
@click.option("-m", "--model", metavar="MODEL", help="Chat model for the chat and rag_ask tools.")
@pass_state
def mcp(state: CliState, transport: str, host: str, port: int, model: str | None) -> None:
    """Serve chat, RAG, speech, OCR, translation and embeddings as MCP tools.

    \b
      terminus mcp                              for hosts that start a stdio server
      terminus mcp --transport http --port 8765 then connect to http://127.0.0.1:8765/mcp
    """
    from terminus.mcp import serve

    serve(
        state.client(),
        "http" if transport == "http" else "stdio",
        host=host,
        port=port,
        chat_model=model,
    )
