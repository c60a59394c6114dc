"""GET /v1/models, /v1/models/{id}, /terminus/v1/models/{id}; /health and /ready."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse

from terminus.client.models_api import ModelStatus
from terminus.server.state import ServerState, server_state
from terminus.types.common import Capability

#: The endpoints each kind of model answers on.
ENDPOINTS: dict[str, list[str]] = {
    Capability.CHAT: [
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/messages",
        "/api/chat",
        "/api/generate",
    ],
    Capability.COMPLETION: ["/v1/completions", "/api/generate"],
    Capability.EMBED: ["/v1/embeddings", "/api/embed", "/api/embeddings"],
    Capability.STT: ["/v1/audio/transcriptions", "/v1/audio/translations"],
    Capability.TTS: ["/v1/audio/speech"],
    Capability.IMAGE: ["/v1/images/generations"],
}


def model_object(status: ModelStatus) -> dict[str, Any]:
    """OpenAI's model object, with Terminus's facts as extra fields.

    ``kind`` (also ``capability``) says what the model does: chat, completion, embed,
    stt, tts, ocr, translate or image; ``capabilities`` adds ``vision`` for a chat model
    that reads images; ``endpoints`` where this server serves it.
    """
    card = status.card
    return {
        "id": card.id,
        "object": "model",
        "created": 0,
        "owned_by": "terminus",
        "kind": str(card.capability),
        "capability": str(card.capability),
        "capabilities": [str(c) for c in card.capabilities],  # "vision": reads images
        "endpoints": ENDPOINTS.get(card.capability, []),
        "aliases": list(card.aliases),
        "cached": status.cached,
        "loaded": status.loaded,
    }


def _served_models(state: ServerState) -> list[ModelStatus]:
    """Every model in the catalog, whatever it does (``kind`` tells them apart)."""
    return state.client.models.list()


def _one(state: ServerState, name: str) -> ModelStatus:
    card = state.client.models.get(name)  # ModelNotFoundError → 404
    return next(s for s in _served_models(state) if s.card.id == card.id)


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
    async def health(request: Request) -> dict[str, Any]:
        """Liveness: the process answers; with the requests in flight (a leak shows here)."""
        state = server_state(request)
        return {"status": "ok", "requests_in_flight": state.active, "draining": state.draining}

    @router.get("/ready", response_model=None)
    async def ready(request: Request) -> JSONResponse:
        """Readiness: 200 once every preloaded model is loaded, else 503 (also while draining)."""
        state = server_state(request)
        models = {
            name: {"status": p.status, **({"error": p.error} if p.error else {})}
            for name, p in state.preloads.items()
        }
        if state.draining:
            return JSONResponse({"status": "draining", "models": models}, status_code=503)
        if state.ready:
            return JSONResponse({"status": "ready", "models": models})
        failed = any(p.status == "failed" for p in state.preloads.values())
        status = "failed" if failed else "loading"
        return JSONResponse({"status": status, "models": models}, status_code=503)
