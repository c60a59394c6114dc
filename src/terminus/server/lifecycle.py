"""Model lifecycle over HTTP: what is loaded (``ps``), explicit load and unload, server facts.

``GET /terminus/v1/ps`` lists loaded models with their memory, busy slots and
keep-alive expiry; ``POST /terminus/v1/models/{id}/load`` (optionally with
``keep_alive`` and load options) and ``.../unload`` load and unload one;
``GET /terminus/v1/server`` says which process and Terminus home this is (the CLI
checks it before reusing a resident server).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from fastapi import APIRouter, Request

from terminus.runtime.keepalive import parse_keep_alive
from terminus.server.schemas import Wire, parse_body
from terminus.server.state import ServerState, server_state
from terminus.types import LoadedModelInfo


class LoadRequest(Wire):
    keep_alive: float | str | None = None
    context_length: int | None = None
    parallel: int | None = None
    threads: int | None = None
    #: Speculative decoding for this load: "off", "ngram", or "draft" with ``draft_model``.
    speculative: str | None = None
    draft_model: str | None = None
    draft_max: int | None = None
    #: KV snapshots of long prompt prefixes on disk: true, or a budget in MiB.
    kv_disk_cache: bool | int | None = None
    #: The model's layers over these ``terminus provide --rpc`` workers, and their shares.
    split: list[str] | str | None = None
    tensor_split: list[float] | str | None = None


async def apply_keep_alive(state: ServerState, card_id: str, value: Any) -> None:
    """A request's ``keep_alive`` (Ollama's semantics) becomes the model's from now on.

    Set when the request starts: the idle clock itself restarts when it ends.
    Raises ``InvalidParameterError`` (400) for anything that is not a duration.
    """
    seconds = parse_keep_alive(value)
    if seconds is not None:
        await asyncio.to_thread(state.client.manager.set_keep_alive, card_id, seconds)


def loaded_entry(info: LoadedModelInfo) -> dict[str, Any]:
    entry = info.model_dump()
    entry["expires_at"] = None if info.expires_in_s is None else time.time() + info.expires_in_s
    return entry


def _ps(state: ServerState) -> dict[str, Any]:
    return {
        "models": [loaded_entry(info) for info in state.client.loaded_models()],
        "requests_in_flight": state.active,
        "max_concurrent": state.settings.max_concurrent,
    }


def _load(state: ServerState, name: str, body: LoadRequest) -> dict[str, Any]:
    card = state.client.models.get(name)
    keep_alive = parse_keep_alive(body.keep_alive)
    options: dict[str, Any] = dict(state.load_options(card))
    fields = (
        "context_length",
        "parallel",
        "threads",
        "speculative",
        "draft_model",
        "draft_max",
        "kv_disk_cache",
        "split",
        "tensor_split",
    )
    for field in fields:
        value = getattr(body, field)
        if value is not None:
            options[field] = value
    manager = state.client.manager
    if keep_alive is not None:
        manager.set_keep_alive(card.id, keep_alive)
    info = state.client.load_model(card.id, **options)
    return loaded_entry(info)


def _unload(state: ServerState, name: str) -> dict[str, Any]:
    card = state.client.models.get(name)
    return {"id": card.id, "unloaded": state.client.unload_model(card.id)}


def add_lifecycle_routes(router: APIRouter) -> None:
    @router.get("/terminus/v1/ps")
    async def ps(request: Request) -> dict[str, Any]:
        """Loaded models: memory, busy slots, keep-alive and when they unload if idle."""
        return await asyncio.to_thread(_ps, server_state(request))

    @router.post("/terminus/v1/models/{model_id}/load")
    async def load(model_id: str, request: Request) -> dict[str, Any]:
        """Load a model now (idempotent); ``keep_alive`` sets how long it stays idle."""
        raw = await request.body()
        body = await parse_body(request, LoadRequest) if raw.strip() else LoadRequest()
        return await asyncio.to_thread(_load, server_state(request), model_id, body)

    @router.post("/terminus/v1/models/{model_id}/unload")
    async def unload(model_id: str, request: Request) -> dict[str, Any]:
        """Unload a model now; ``409`` while it serves requests."""
        return await asyncio.to_thread(_unload, server_state(request), model_id)

    @router.get("/terminus/v1/server")
    async def server_facts(request: Request) -> dict[str, Any]:
        """Which process and Terminus home this is."""
        from terminus import __version__

        state = server_state(request)
        return {
            "pid": os.getpid(),
            "home": str(state.client.home),
            "version": __version__,
            "resident": state.settings.resident,
            "keep_alive_s": _finite(state.client.manager.default_keep_alive_s),
        }


def _finite(seconds: float) -> float | None:
    return None if seconds == float("inf") else seconds
