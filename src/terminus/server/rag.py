"""Terminus extension: RAG workspace search, under /terminus/v1 (not part of OpenAI's API)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field

from terminus.rag import list_workspaces, open_workspace
from terminus.server.middleware import access_record
from terminus.server.schemas import Wire, parse_body
from terminus.server.state import ServerState, server_state


class RagSearchRequest(Wire):
    query: str = Field(min_length=1)
    top_k: int = Field(default=5, ge=1, le=100)
    filter: dict[str, Any] | None = None
    hybrid: bool | None = None


def _search(state: ServerState, workspace: str, body: RagSearchRequest) -> dict[str, Any]:
    with open_workspace(state.client, workspace) as ws:
        results = ws.search(body.query, body.top_k, body.filter, hybrid=body.hybrid)
        model = ws.model
    return {
        "object": "list",
        "workspace": workspace,
        "model": model,
        "data": [r.model_dump(mode="json") for r in results],
    }


def add_rag_routes(router: APIRouter) -> None:
    @router.get("/terminus/v1/rag/workspaces")
    async def workspaces(request: Request) -> dict[str, Any]:
        state = server_state(request)
        infos = await asyncio.to_thread(list_workspaces, state.client)
        # no ``path``: where files live on this machine is none of a caller's business
        data = [i.model_dump(mode="json", exclude={"path"}) for i in infos]
        return {"object": "list", "data": data}

    @router.post("/terminus/v1/rag/workspaces/{workspace}/search")
    async def search(workspace: str, request: Request) -> dict[str, Any]:
        body = await parse_body(request, RagSearchRequest)
        state = server_state(request)
        slot = state.admit()
        try:
            result = await asyncio.to_thread(_search, state, workspace, body)
        finally:
            slot.release()
        access_record(request).model = result["model"]
        return result
