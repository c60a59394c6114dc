"""RAG workspaces: local document search and cited answers.

Built on the client (``embed`` and ``completion``), so a workspace works the same when
those run on a peer or a server. See docs/rag.md.
"""

from __future__ import annotations

from terminus.rag.answer import Answer
from terminus.rag.chunking import MarkdownChunker, SentenceChunker, TokenWindowChunker
from terminus.rag.ingest import TextDocument
from terminus.rag.registry import delete_workspace, list_workspaces
from terminus.rag.store import StoreConfig, VectorStore
from terminus.rag.types import (
    ChunkPosition,
    Citation,
    DocumentInfo,
    IngestResult,
    SearchResult,
    WorkspaceInfo,
)
from terminus.rag.workspace import Workspace, open_workspace

__all__ = [
    "Answer",
    "ChunkPosition",
    "Citation",
    "DocumentInfo",
    "IngestResult",
    "MarkdownChunker",
    "SearchResult",
    "SentenceChunker",
    "StoreConfig",
    "TextDocument",
    "TokenWindowChunker",
    "VectorStore",
    "Workspace",
    "WorkspaceInfo",
    "delete_workspace",
    "list_workspaces",
    "open_workspace",
]
