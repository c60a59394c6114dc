"""Terminus extension: chat conversations kept on disk, for the web app and any client.

One JSON file per conversation under ``$TERMINUS_HOME/conversations/``, replaced
atomically (a crash mid-write leaves the previous version, never a torn file).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import Field

from terminus.server.errors import APIError
from terminus.server.schemas import Wire, parse_body
from terminus.server.state import ServerState, server_state

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class StoredMessage(Wire):
    role: Literal["system", "user", "assistant", "tool"]
    content: str = Field(max_length=1_000_000)


class ConversationIn(Wire):
    title: str = Field(default="", max_length=200)
    model: str | None = None
    system: str | None = None
    messages: list[StoredMessage] = Field(default_factory=list, max_length=10_000)
    settings: dict[str, Any] = Field(default_factory=dict)


def conversations_dir(state: ServerState) -> Path:
    return state.client.home / "conversations"


def _path(state: ServerState, conversation_id: str) -> Path:
    if not _ID.match(conversation_id):
        raise APIError(
            400,
            "a conversation id is 1-64 letters, digits, '-' or '_'",
            code="invalid_parameter",
            param="id",
        )
    return conversations_dir(state) / f"{conversation_id}.json"


def _missing(conversation_id: str) -> APIError:
    return APIError(404, f"no conversation {conversation_id!r}", code="not_found")


def _read(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _list(state: ServerState) -> list[dict[str, Any]]:
    folder = conversations_dir(state)
    rows = []
    for path in folder.glob("*.json") if folder.is_dir() else ():
        try:
            data = _read(path)
        except (OSError, ValueError):
            continue  # unreadable files are skipped, not fatal to the listing
        rows.append(
            {
                "id": path.stem,
                "title": data.get("title") or "",
                "model": data.get("model"),
                "messages": len(data.get("messages", [])),
                "updated_at": data.get("updated_at", 0),
            }
        )
    return sorted(rows, key=lambda r: r["updated_at"], reverse=True)


def _write(state: ServerState, conversation_id: str, body: ConversationIn) -> dict[str, Any]:
    path = _path(state, conversation_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = body.model_dump(mode="json")
    data.update(id=conversation_id, updated_at=time.time())
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, ensure_ascii=False)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return data


def _get(state: ServerState, conversation_id: str) -> dict[str, Any]:
    path = _path(state, conversation_id)
    if not path.is_file():
        raise _missing(conversation_id)
    return _read(path)


def _delete(state: ServerState, conversation_id: str) -> dict[str, Any]:
    path = _path(state, conversation_id)
    if not path.is_file():
        raise _missing(conversation_id)
    path.unlink()
    return {"id": conversation_id, "deleted": True}


def add_conversation_routes(router: APIRouter) -> None:
    @router.get("/terminus/v1/conversations")
    async def list_conversations(request: Request) -> dict[str, Any]:
        rows = await asyncio.to_thread(_list, server_state(request))
        return {"object": "list", "data": rows}

    @router.get("/terminus/v1/conversations/{conversation_id}")
    async def get_conversation(conversation_id: str, request: Request) -> dict[str, Any]:
        return await asyncio.to_thread(_get, server_state(request), conversation_id)

    @router.put("/terminus/v1/conversations/{conversation_id}")
    async def put_conversation(conversation_id: str, request: Request) -> dict[str, Any]:
        body = await parse_body(request, ConversationIn)
        return await asyncio.to_thread(_write, server_state(request), conversation_id, body)

    @router.delete("/terminus/v1/conversations/{conversation_id}")
    async def delete_conversation(conversation_id: str, request: Request) -> dict[str, Any]:
        return await asyncio.to_thread(_delete, server_state(request), conversation_id)
