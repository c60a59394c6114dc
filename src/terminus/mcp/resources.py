"""Resources and prompts of ``terminus mcp``: the user's document workspaces, readable by a host.

Resources:

- ``terminus://workspaces``: every RAG workspace (model, document and chunk counts) with the
  URI of its document list;
- ``terminus://workspaces/{workspace}/documents``: a workspace's documents (id, source, kind,
  size) with the URI of each one's text;
- ``terminus://workspaces/{workspace}/documents/{document}``: a document's extracted text
  (by id, id prefix or source).

Prompts: ``ask_workspace`` (answer from a workspace's passages, citing them) and
``summarize_document`` (a document's text with the request to summarize it).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from terminus.errors import DocumentNotFoundError, TerminusError

if TYPE_CHECKING:
    from terminus.client.sync import Terminus

#: A document longer than this is cut in ``summarize_document`` (local models' contexts are small).
PROMPT_DOCUMENT_CHARS = 12_000
WORKSPACES_URI = "terminus://workspaces"


def documents_uri(workspace: str) -> str:
    return f"{WORKSPACES_URI}/{workspace}/documents"


def _reported(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Terminus errors reach the host with their message, as for tools."""
    import functools

    from mcp.server.mcpserver.exceptions import ResourceError

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TerminusError as exc:
            raise ResourceError(exc.one_line()) from exc

    return wrapper


def _document_text(client: Terminus, workspace: str, document: str) -> tuple[str, str]:
    """(source, text) of one document in a workspace."""
    from terminus.rag.workspace import open_workspace

    store = open_workspace(client, workspace)
    try:
        document_id = store.resolve_document(document)
        for record in store.store.document_records():
            if record.id == document_id:
                return record.source, record.text
    finally:
        store.close()
    raise DocumentNotFoundError(f"no document {document!r} in workspace {workspace!r}")


def add_resources(server: Any, client: Terminus) -> None:
    @server.resource(WORKSPACES_URI, name="workspaces", mime_type="application/json")
    @_reported
    def workspaces() -> str:
        """The document workspaces on this machine (`terminus rag`)."""
        from terminus.rag.registry import list_workspaces

        rows = [
            {
                "name": info.name,
                "model": info.model,
                "documents": info.documents,
                "chunks": info.chunks,
                "uri": documents_uri(info.name),
            }
            for info in list_workspaces(client)
        ]
        return json.dumps(rows, ensure_ascii=False)

    @server.resource(
        WORKSPACES_URI + "/{workspace}/documents",
        name="workspace_documents",
        mime_type="application/json",
    )
    @_reported
    def workspace_documents(workspace: str) -> str:
        """The documents in a workspace, each with the URI of its text."""
        from terminus.rag.workspace import open_workspace

        store = open_workspace(client, workspace)
        try:
            rows = [
                {
                    "id": d.id,
                    "source": d.source,
                    "kind": d.kind,
                    "characters": d.characters,
                    "uri": f"{documents_uri(workspace)}/{d.id}",
                }
                for d in store.documents()
            ]
        finally:
            store.close()
        return json.dumps(rows, ensure_ascii=False)

    @server.resource(
        WORKSPACES_URI + "/{workspace}/documents/{document}",
        name="document_text",
        mime_type="text/plain",
    )
    @_reported
    def document_text(workspace: str, document: str) -> str:
        """A document's extracted text (by id, id prefix or source)."""
        return _document_text(client, workspace, document)[1]


def add_prompts(server: Any, client: Terminus) -> None:
    @server.prompt()
    def ask_workspace(workspace: str, question: str) -> str:
        """Answer a question from a document workspace, citing the passages used."""
        return (
            f"Use the rag_search tool on the workspace {workspace!r} to find passages about "
            f"this question, then answer it from those passages only and name their sources. "
            f"If they do not answer it, say so.\n\nQuestion: {question}"
        )

    @server.prompt()
    @_reported
    def summarize_document(workspace: str, document: str) -> str:
        """Summarize one document of a workspace (its text is included in the prompt)."""
        source, text = _document_text(client, workspace, document)
        if len(text) > PROMPT_DOCUMENT_CHARS:
            text = text[:PROMPT_DOCUMENT_CHARS] + "\n[… cut]"
        return f"Summarize this document ({source}) in a few sentences.\n\n{text}"
