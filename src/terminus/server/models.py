"""GET /v1/models, /v1/models/{id}, /terminus/v1/models/{id}; /health and /ready."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse

from terminus.client.models_api import ModelStatus
from terminus.errors import ModelNotFoundError
from terminus.server.state import SERVED_CAPABILITIES, ServerState, server_state


def model_object(status: ModelStatus) -> dict[str, Any]:
    """OpenAI's model object, with Terminus's facts as extra fields."""
    card = status.card
    return {
        "id": card.id,
        "object": "model",
        "created": 0,
        "owned_by": "terminus",
        "capability": str(card.capability),
        "aliases": list(card.aliases),
        "cached": status.cached,
        "loaded": status.loaded,
    }


def _served_models(state: ServerState) -> list[ModelStatus]:
    """Chat, completion and embedding models (``capability`` tells them apart)."""
    return [s for s in state.client.models.list() if s.card.capability in SERVED_CAPABILITIES]


def _one(state: ServerState, name: str) -> ModelStatus:
    card = state.client.models.get(name)
    for status in _served_models(state):
        if status.card.id == card.id:
            return status
    raise ModelNotFoundError(
        f"{card.id} is a {card.capability} model; this API serves text and embedding models"
    )


def _info(state: ServerState, name: str) -> dict[str, Any]:
    info = state.client.models.info(name)
    loaded = [m for m in state.client.loaded_models() if m.id == info["id"]]
    info["loaded"] = loaded[0].model_dump() if loaded else None
    return info


def add_model_routes(router: APIRouter) -> None:
    @router.get("/v1/models")
    async def list_models(request: Request) -> dict[str, Any]:
        state = server_state(request)
        statuses = await asyncio.to_thread(_served_models, state)
        return {"object": "list", "data": [model_object(s) for s in statuses]}

    @router.get("/v1/models/{model_id:path}")
    async def retrieve_model(model_id: str, request: Request) -> dict[str, Any]:
        state = server_state(request)
        access = request.scope.get("terminus.access")
        status = await asyncio.to_thread(_one, state, model_id)
        if access is not None:
            access.model = status.card.id
        return model_object(status)

    @router.get("/terminus/v1/models/{model_id:path}")
    async def model_info(model_id: str, request: Request) -> dict[str, Any]:
        """Everything Terminus knows: the card, cache state, GGUF header, load state."""
        return await asyncio.to_thread(_info, server_state(request), model_id)


def add_probe_routes(router: APIRouter) -> None:
    @router.get("/health")
    async def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @router.get("/ready", response_model=None)
    async def ready(request: Request) -> JSONResponse:
        """Readiness: 200 once every preloaded model is loaded, else 503."""
        state = server_state(request)
        models = {
            name: {"status": p.status, **({"error": p.error} if p.error else {})}
            for name, p in state.preloads.items()
        }
        if state.ready:
            return JSONResponse({"status": "ready", "models": models})
        failed = any(p.status == "failed" for p in state.preloads.values())
        status = "failed" if failed else "loading"
        return JSONResponse({"status": status, "models": models}, status_code=503)
