"""Where workspaces live (``<TERMINUS_HOME>/rag/<name>/``): names, listing, deletion."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from terminus.errors import InvalidParameterError, WorkspaceNotFoundError
from terminus.rag.client import RagClient
from terminus.rag.sqlite_db import is_workspace
from terminus.rag.sqlite_store import SqliteStore
from terminus.rag.types import WorkspaceInfo

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def workspaces_root(home: str | os.PathLike[str] | RagClient) -> Path:
    base = Path(home) if isinstance(home, str | os.PathLike) else Path(home.home)
    return base / "rag"


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidParameterError(
            f"invalid workspace name {name!r}",
            hint="letters, digits, '.', '_' and '-'; at most 64; not starting with '.' or '-'",
        )
    return name


def list_workspaces(home: str | os.PathLike[str] | RagClient) -> list[WorkspaceInfo]:
    root = workspaces_root(home)
    infos: list[WorkspaceInfo] = []
    if not root.is_dir():
        return infos
    for directory in sorted(root.iterdir()):
        if not _NAME.match(directory.name) or not is_workspace(directory):
            continue
        store = SqliteStore(directory)
        try:
            documents, chunks = store.counts()
            infos.append(
                WorkspaceInfo(
                    name=directory.name,
                    path=str(directory),
                    model=store.config.model,
                    dimensions=store.config.dimensions,
                    documents=documents,
                    chunks=chunks,
                    created_at=store.created_at,
                )
            )
        finally:
            store.close()
    return infos


def delete_workspace(home: str | os.PathLike[str] | RagClient, name: str) -> None:
    """Remove a workspace and everything in it. It disappears at once (renamed away
    first), so a crash mid-delete never leaves a half workspace behind."""
    directory = workspaces_root(home) / check_name(name)
    if not is_workspace(directory):
        raise WorkspaceNotFoundError(f"no workspace named {name!r}")
    trash = directory.with_name(f".{name}.deleting-{os.getpid()}")
    directory.rename(trash)
    shutil.rmtree(trash, ignore_errors=True)
