"""``terminus mcp``: chat, RAG, speech, OCR, translation and embeddings as MCP tools.

The user's document workspaces are resources too, with prompts over them
(``terminus.mcp.resources``).

Each tool is a thin call into the Terminus client, so an MCP host (an IDE, a
desktop assistant, another agent) gets private, local AI on this machine. The
HTTP transport binds to loopback only: the tools read local files.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from terminus.errors import InvalidParameterError, TerminusError, ToolServerError

if TYPE_CHECKING:
    from terminus.client.sync import Terminus

LOOPBACK = ("127.0.0.1", "localhost", "::1")
SERVER_NAME = "terminus"


def _sdk_server() -> Any:
    try:
        from mcp.server.mcpserver import MCPServer
    except ImportError as exc:
        raise ToolServerError(
            "the MCP server needs the mcp package", hint="pip install 'terminus-sdk[agents]'"
        ) from exc
    return MCPServer


def _existing_file(path: str) -> Path:
    target = Path(path).expanduser()
    if not target.is_file():
        raise InvalidParameterError(f"no such file: {path}")
    return target


def _reported(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Terminus errors reach the host with their message (the SDK hides other exceptions)."""
    from mcp.server.mcpserver.exceptions import ToolError

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TerminusError as exc:
            raise ToolError(exc.one_line()) from exc

    return wrapper


def build_server(client: Terminus, *, chat_model: str | None = None) -> Any:
    """An ``MCPServer`` whose tools call ``client``; run it with :func:`serve`."""
    server = _sdk_server()(
        SERVER_NAME,
        instructions="Local AI on this machine: chat, document search, speech, OCR, translation.",
    )

    @server.tool()
    @_reported
    def chat(
        prompt: str,
        model: str | None = None,
        system: str | None = None,
        max_tokens: int = 256,
        temperature: float | None = None,
    ) -> str:
        """Ask a local language model; returns its answer."""
        stream = client.completion(
            prompt,
            model=model or chat_model,
            system=system,
            max_tokens=max_tokens,
            temperature=temperature,
        )
        return stream.text

    @server.tool()
    @_reported
    def rag_search(workspace: str, query: str, top_k: int = 5) -> list[dict[str, Any]]:
        """Search a document workspace; returns the best-matching passages with their source."""
        from terminus.rag.workspace import open_workspace

        store = open_workspace(client, workspace)
        try:
            hits = store.search(query, top_k)
        finally:
            store.close()
        return [{"source": h.label(), "score": round(h.score, 4), "text": h.text} for h in hits]

    @server.tool()
    @_reported
    def rag_ask(workspace: str, question: str, model: str | None = None) -> dict[str, Any]:
        """Answer a question from a document workspace, citing the passages used."""
        from terminus.rag.workspace import open_workspace

        store = open_workspace(client, workspace)
        try:
            answer = store.ask(question, model or chat_model)
            text = answer.text
            sources = [s.model_dump(mode="json") for s in answer.sources]
            cited = [c.number for c in answer.citations]
            cited_text = answer.cited_text
        finally:
            store.close()
        return {"answer": text, "cited_text": cited_text, "cited": cited, "sources": sources}

    @server.tool()
    @_reported
    def transcribe(audio_path: str, language: str | None = None) -> dict[str, Any]:
        """Transcribe an audio file on this machine to text."""
        result = client.transcribe(_existing_file(audio_path), language=language)
        return {"text": result.text, "language": result.language, "duration_s": result.duration_s}

    @server.tool()
    @_reported
    def speak(text: str, output_path: str, speed: float = 1.0) -> dict[str, Any]:
        """Speak text aloud into a WAV file at output_path."""
        target = Path(output_path).expanduser()
        if not target.parent.is_dir():
            raise InvalidParameterError(f"no such folder: {target.parent}")
        speech = client.speak(text, speed=speed, output=target)
        seconds = len(speech.pcm) / 2 / speech.sample_rate
        return {
            "path": str(target),
            "seconds": round(seconds, 2),
            "sample_rate": speech.sample_rate,
        }

    @server.tool()
    @_reported
    def ocr(image_path: str) -> str:
        """Read the text in an image file, in reading order."""
        return client.ocr(_existing_file(image_path)).text

    @server.tool()
    @_reported
    def translate(text: str, target: str, source: str | None = None) -> dict[str, Any]:
        """Translate text into the target language (ISO 639-1 code, e.g. 'fr')."""
        result = client.translate(text, target, source)
        return {"text": result.text, "source": result.source, "target": result.target}

    @server.tool()
    @_reported
    def embed(texts: list[str], model: str | None = None) -> dict[str, Any]:
        """Embed texts; returns one vector per text."""
        if not texts:
            raise InvalidParameterError("texts must not be empty")
        result = client.embed(texts, model=model)
        return {"model": result.model, "vectors": [list(map(float, v)) for v in result.vectors]}

    from terminus.mcp.resources import add_prompts, add_resources

    add_resources(server, client)
    add_prompts(server, client)
    return server


def serve(
    client: Terminus,
    transport: Literal["stdio", "http"] = "stdio",
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    chat_model: str | None = None,
) -> None:
    """Serve until stopped: over stdin/stdout, or streamable HTTP at ``http://host:port/mcp``."""
    server = build_server(client, chat_model=chat_model)
    if transport == "stdio":
        server.run("stdio")
        return
    if host not in LOOPBACK and os.environ.get("TERMINUS_MCP_ALLOW_REMOTE") != "1":
        raise InvalidParameterError(
            f"the MCP server binds to loopback only, not {host}",
            hint="its tools read local files; set TERMINUS_MCP_ALLOW_REMOTE=1 to override",
        )
    server.run("streamable-http", host=host, port=port)
