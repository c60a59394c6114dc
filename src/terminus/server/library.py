"""Terminus extension: the model library over HTTP — list, pull with progress, remove, verify.

``GET /terminus/v1/catalog`` lists every model the catalog knows (any capability, cached
or not, loaded or not) with its size and whether it fits in memory; ``POST
/terminus/v1/models/{id}/pull`` streams NDJSON progress lines while the files are fetched
and verified, ending with ``{"status": "success"}`` or ``{"status": "error", ...}``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field
from starlette.responses import StreamingResponse

from terminus.client.models_api import ModelStatus
from terminus.errors import TerminusError
from terminus.models.cache import ModelFiles
from terminus.models.card import ModelCard
from terminus.runtime.memory import system_memory
from terminus.server.schemas import Wire, parse_body
from terminus.server.state import ServerState, server_state

#: A loaded model needs its weights plus context and compute buffers: a rough margin.
LOAD_OVERHEAD = 1.25
#: At most this many progress lines a second (the engine reports every chunk it reads).
PROGRESS_INTERVAL_S = 0.1


class PullBody(Wire):
    model: str = Field(min_length=1, max_length=500)
    kind: str | None = None


def catalog_entry(status: ModelStatus, usable: int) -> dict[str, Any]:
    card = status.card
    size = card.size
    return {
        "id": card.id,
        "name": card.name,
        "capability": str(card.capability),
        "capabilities": [str(c) for c in card.capabilities],
        "aliases": list(card.aliases),
        "engine": card.engine,
        "size": size,
        "cached": status.cached,
        "partial_bytes": status.partial_bytes,
        "loaded": status.loaded,
        "fits": size == 0 or size * LOAD_OVERHEAD <= usable,
        "user_added": card.user_added,
        "description": card.description,
    }


def _catalog(state: ServerState) -> dict[str, Any]:
    usable = min(state.client.manager.budget_bytes, system_memory().available)
    statuses = state.client.models.list()
    loaded = [m.model_dump() for m in state.client.loaded_models()]
    return {
        "object": "list",
        "data": [catalog_entry(s, usable) for s in statuses],
        "loaded": loaded,
        "memory": {"budget": state.client.manager.budget_bytes, "available": usable},
    }


class StreamedProgress:
    """A :class:`~terminus.models.progress.Progress` that posts throttled events to a loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[dict[str, Any]]):
        self._loop = loop
        self._queue = queue
        self._lock = threading.Lock()
        self._description = ""
        self._total: int | None = None
        self._completed = 0
        self._last = 0.0

    def _post(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < PROGRESS_INTERVAL_S:
            return
        self._last = now
        event = {
            "status": self._description,
            "total": self._total,
            "completed": self._completed,
        }
        self._loop.call_soon_threadsafe(self._queue.put_nowait, event)

    def start(self, description: str, total: int | None, initial: int = 0) -> None:
        with self._lock:
            self._description, self._total, self._completed = description, total, initial
            self._post(force=True)

    def advance(self, n: int) -> None:
        with self._lock:
            self._completed += n
            self._post()

    def finish(self) -> None:
        with self._lock:
            self._post(force=True)


async def resolve_any(state: ServerState, name: str) -> ModelCard:
    """The card for ``name``, whatever its capability (unknown → 404)."""
    return await asyncio.to_thread(state.client.models.get, name)


def _ndjson(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode() + b"\n"


async def pull_events(
    state: ServerState, model: str, kind: str | None = None
) -> AsyncIterator[bytes]:
    """Pull ``model`` (an id, a catalog name or an hf:// reference) on a worker thread,
    yielding its progress as NDJSON lines."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    progress = StreamedProgress(loop, queue)
    yield _ndjson({"status": "pulling", "model": model, "completed": 0})

    def pull() -> tuple[ModelCard, ModelFiles]:
        files = state.client.models.pull(model, progress, kind=kind)
        return state.client.models.get(model), files

    job = asyncio.ensure_future(asyncio.to_thread(pull))
    while not job.done() or not queue.empty():
        getter = asyncio.ensure_future(queue.get())
        done, _ = await asyncio.wait({getter, job}, return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            yield _ndjson(getter.result())
        else:
            getter.cancel()
    try:
        card, files = job.result()
    except TerminusError as exc:
        yield _ndjson({"status": "error", "error": exc.one_line(), "code": exc.code})
        return
    except Exception as exc:  # the stream has started: report in-band, never a torn body
        yield _ndjson({"status": "error", "error": f"{type(exc).__name__}: {exc}"})
        return
    size = sum(p.stat().st_size for p in files.paths.values())
    yield _ndjson({"status": "success", "model": card.id, "total": size, "completed": size})


def add_library_routes(router: APIRouter) -> None:
    @router.get("/terminus/v1/catalog")
    async def catalog(request: Request) -> dict[str, Any]:
        return await asyncio.to_thread(_catalog, server_state(request))

    @router.post("/terminus/v1/models/{model_id:path}/pull", response_model=None)
    async def pull(model_id: str, request: Request) -> StreamingResponse:
        state = server_state(request)
        await resolve_any(state, model_id)  # an unknown model is a 404 before the stream
        return StreamingResponse(pull_events(state, model_id), media_type="application/x-ndjson")

    @router.post("/terminus/v1/pull", response_model=None)
    async def pull_by_name(request: Request) -> StreamingResponse:
        """Pull by any name ``models pull`` takes: ``{"model": "hf://OWNER/REPO:Q4_K_M"}``."""
        body = await parse_body(request, PullBody)
        state = server_state(request)
        events = pull_events(state, body.model, body.kind)
        return StreamingResponse(events, media_type="application/x-ndjson")

    @router.post("/terminus/v1/models/{model_id:path}/verify")
    async def verify(model_id: str, request: Request) -> dict[str, Any]:
        state = server_state(request)
        card = await resolve_any(state, model_id)
        results = await asyncio.to_thread(state.client.models.verify, card.id)
        files = [{"name": r.name, "ok": r.ok, "detail": r.detail} for r in results.get(card.id, [])]
        return {"id": card.id, "ok": bool(files) and all(f["ok"] for f in files), "files": files}

    @router.delete("/terminus/v1/models/{model_id:path}")
    async def remove(model_id: str, request: Request) -> dict[str, Any]:
        state = server_state(request)
        card = await resolve_any(state, model_id)
        freed = await asyncio.to_thread(state.client.models.remove, card.id)
        return {"id": card.id, "deleted": True, "freed_bytes": freed}
