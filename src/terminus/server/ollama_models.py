"""Ollama's model administration over the Terminus catalog and cache.

``/api/tags`` lists the models whose files are on disk; ``/api/pull`` fetches one
(NDJSON progress, as ``ollama pull`` shows); ``/api/copy`` and ``/api/create`` write
user cards that point at an existing model's files (no bytes are copied);
``/api/delete`` removes a model's files (a copy's card goes with it).
``/api/create`` takes ``from`` an existing model with ``system`` and ``parameters``;
Modelfile text, GGUF uploads (``files``), adapters, templates and quantization are
400s naming the field.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from terminus.client.sync import Terminus
from terminus.errors import ModelNotFoundError
from terminus.models.card import ModelCard
from terminus.models.progress import NullProgress
from terminus.server.error_shapes import ollama_error
from terminus.server.errors import describe, invalid, unsupported
from terminus.server.ollama_convert import (
    SAMPLING_OPTIONS,
    OllamaCopyRequest,
    OllamaCreateRequest,
    OllamaModelRequest,
    now_rfc3339,
    strip_tag,
    tagged,
)
from terminus.server.schemas import parse_body
from terminus.server.state import ServerState, server_state
from terminus.server.streaming import ndjson
from terminus.types.common import Capability

#: Capabilities an Ollama client can use: generation and embeddings.
OLLAMA_CAPABILITIES = frozenset({Capability.CHAT, Capability.COMPLETION, Capability.EMBED})
_QUANT_RE = re.compile(r"(?i)\b(?:I?Q\d(?:_[A-Z0-9]+)*|F16|BF16|F32)\b")
#: /api/create ``parameters`` → card defaults (Ollama's names, Terminus's).
CREATE_PARAMETERS = {**SAMPLING_OPTIONS, "num_predict": "max_tokens", "stop": "stop"}


def _modified_at(client: Terminus, card: ModelCard) -> str:
    blob = client.cache.blob_path(card.main_file.sha256)
    try:
        stamp = blob.stat().st_mtime
    except OSError:
        return now_rfc3339()
    return datetime.fromtimestamp(stamp, UTC).isoformat().replace("+00:00", "Z")


def details(card: ModelCard) -> dict[str, Any]:
    family = card.architecture or card.engine
    match = _QUANT_RE.search(card.main_file.name.replace(".", " "))
    return {
        "parent_model": card.base_model or "",
        "format": card.format,
        "family": family,
        "families": [family],
        "parameter_size": "",
        "quantization_level": match.group(0).upper() if match else "",
    }


def model_entry(client: Terminus, card: ModelCard) -> dict[str, Any]:
    return {
        "name": tagged(card.id),
        "model": tagged(card.id),
        "modified_at": _modified_at(client, card),
        "size": card.size,
        "digest": card.main_file.sha256,
        "details": details(card),
    }


def _tags(client: Terminus) -> dict[str, Any]:
    models = [
        model_entry(client, s.card)
        for s in client.models.list()
        if s.cached and s.card.capability in OLLAMA_CAPABILITIES
    ]
    return {"models": models}


def _ps(client: Terminus) -> dict[str, Any]:
    entries = []
    for info in client.loaded_models():
        try:
            card = client.models.get(info.id)
        except ModelNotFoundError:
            continue
        entry = model_entry(client, card)
        del entry["modified_at"]
        entry.update(size=info.memory_bytes, size_vram=0, context_length=info.context_length)
        expires_in = getattr(info, "expires_in_s", None)  # where the manager keeps idle timers
        if expires_in is not None:
            expiry = datetime.now(UTC) + timedelta(seconds=expires_in)
            entry["expires_at"] = expiry.isoformat().replace("+00:00", "Z")
        entries.append(entry)
    return {"models": entries}


def capabilities(card: ModelCard) -> list[str]:
    if card.capability == Capability.EMBED:
        return ["embedding"]
    if card.capability == Capability.CHAT:
        seeing = ["vision"] if Capability.VISION in card.capabilities else []
        return ["completion", "tools", *seeing]
    return ["completion"]


def _parameters_text(card: ModelCard) -> str:
    lines = []
    for ollama_name, name in CREATE_PARAMETERS.items():
        value = card.defaults.get(name)
        if value is None:
            continue
        for item in value if isinstance(value, list | tuple) else [value]:
            lines.append(f"{ollama_name:<16}{item}")
    return "\n".join(lines)


def _show(client: Terminus, name: str) -> dict[str, Any]:
    card = _cached_card(client, name)
    info = client.models.info(card.id)
    gguf = info.get("gguf") or {}
    arch = gguf.get("architecture") or card.architecture or card.engine
    model_info: dict[str, Any] = {"general.architecture": arch}
    if gguf.get("name"):
        model_info["general.basename"] = gguf["name"]
    for key, field in (
        ("context_length", "context_length"),
        ("block_count", "layers"),
        ("embedding_length", "embedding_length"),
    ):
        if gguf.get(field) is not None:
            model_info[f"{arch}.{key}"] = gguf[field]
    system = card.defaults.get("system_prompt")
    modelfile = f"FROM {card.base_model or card.id}\n" + "".join(
        f"PARAMETER {line}\n" for line in _parameters_text(card).splitlines()
    )
    if system:
        modelfile += f'SYSTEM """{system}"""\n'
    return {
        "modelfile": modelfile,
        "parameters": _parameters_text(card),
        "template": card.chat_template or "",
        "system": system or "",
        "details": details(card),
        "model_info": model_info,
        "capabilities": capabilities(card),
        "license": card.license or "",
        "modified_at": _modified_at(client, card),
    }


def _cached_card(client: Terminus, name: str) -> ModelCard:
    """A model Ollama would call present: known, and with its files on disk."""
    try:
        card = client.models.get(strip_tag(name))
    except ModelNotFoundError as exc:
        raise ModelNotFoundError(f"model {name!r} not found", hint=exc.hint) from exc
    if not client.cache.is_cached(card):
        raise ModelNotFoundError(
            f"model {name!r} not found", hint=f"pull it first: POST /api/pull {card.id}"
        )
    return card


def _copy_card(client: Terminus, source: ModelCard, destination: str, **defaults: Any) -> ModelCard:
    new_id = strip_tag(destination)
    client.catalog.check_new_id(new_id)  # malformed, or a built-in name: 400
    merged = {**source.defaults, **{k: v for k, v in defaults.items() if v is not None}}
    card = source.model_copy(
        update={
            "id": new_id,
            "name": new_id,
            "aliases": (),
            "user_added": True,
            "base_model": source.base_model or source.id,
            "defaults": merged,
        }
    )
    client.catalog.save_user_card(card)
    client.cache.files(card)  # link models/<id>/ to the shared blobs
    return card


def _delete(client: Terminus, name: str) -> None:
    card = _cached_card(client, name)
    client.models.remove(card.id, forget=True)


def _create_defaults(body: OllamaCreateRequest) -> dict[str, Any]:
    for name in ("files", "adapters", "template", "license", "messages", "quantize", "modelfile"):
        if getattr(body, name):
            raise unsupported(name, f"/api/create with {name!r}")
    if not body.from_:
        raise invalid("from", "from is required: the existing model to build on")
    defaults: dict[str, Any] = {}
    for key, value in (body.parameters or {}).items():
        if key not in CREATE_PARAMETERS:
            raise unsupported(f"parameters.{key}", f"parameter {key!r}")
        defaults[CREATE_PARAMETERS[key]] = value
    if "stop" in defaults and isinstance(defaults["stop"], str):
        defaults["stop"] = [defaults["stop"]]
    if body.system is not None:
        defaults["system_prompt"] = body.system
    from terminus.types.chat import GenerationParams

    try:  # the same range checks as a request's
        GenerationParams.model_validate({k: v for k, v in defaults.items() if k != "system_prompt"})
    except ValueError as exc:
        raise invalid("parameters", f"invalid parameters: {exc}") from exc
    return defaults


class _PullProgress:
    """Terminus's progress callbacks (a worker thread) → Ollama's pull statuses (a queue)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Any], card: ModelCard):
        self.loop = loop
        self.queue = queue
        self.digests = {f.name: f.sha256 for f in card.files}
        self.status = ""
        self.digest = ""
        self.total = 0
        self.completed = 0
        self.sent = -1
        self.verified = False

    def _put(self, item: dict[str, Any]) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, item)

    def _report(self, force: bool = False) -> None:
        step = max(self.total // 100, 1)  # about a line per percent
        if force or self.completed - self.sent >= step:
            self.sent = self.completed
            item: dict[str, Any] = {"status": self.status, "digest": "sha256:" + self.digest}
            if self.total:
                item.update(total=self.total, completed=self.completed)
            self._put(item)

    def start(self, description: str, total: int | None, initial: int = 0) -> None:
        verifying = description.startswith("verifying ")
        name = description.removeprefix("verifying ")
        self.digest = self.digests.get(name, "")
        if verifying:
            self.verified = True
            self._put({"status": "verifying sha256 digest"})
            self.status = ""
            return
        self.status = f"pulling {self.digest[:12] or name}"
        self.total, self.completed, self.sent = total or 0, initial, -1
        self._report(force=True)

    def advance(self, n: int) -> None:
        if self.status:
            self.completed += n
            self._report()

    def finish(self) -> None:
        if self.status:
            self._report(force=True)
            self.status = ""


async def _pull_lines(client: Terminus, card: ModelCard) -> AsyncIterator[dict[str, Any]]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    progress = _PullProgress(loop, queue, card)
    end = object()

    def pull() -> None:
        try:
            client.models.pull(card.id, progress)
        except BaseException as exc:
            loop.call_soon_threadsafe(queue.put_nowait, exc)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, end)

    yield {"status": "pulling manifest"}
    task = asyncio.ensure_future(asyncio.to_thread(pull))
    failure: BaseException | None = None
    while (item := await queue.get()) is not end:
        if isinstance(item, BaseException):
            failure = item
        else:
            yield item
    await task
    if failure is not None:
        yield ollama_error(describe(failure)[1]["error"]["message"])
        return
    if not progress.verified:  # sources that hash while they copy verified as they went
        yield {"status": "verifying sha256 digest"}
    yield {"status": "writing manifest"}
    yield {"status": "success"}


async def _stream(lines: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    async for line in lines:
        yield ndjson(line)


def add_ollama_model_routes(router: APIRouter) -> None:
    @router.get("/api/tags")
    async def tags(request: Request) -> dict[str, Any]:
        return await asyncio.to_thread(_tags, server_state(request).client)

    @router.get("/api/ps")
    async def ps(request: Request) -> dict[str, Any]:
        return await asyncio.to_thread(_ps, server_state(request).client)

    @router.post("/api/show")
    async def show(request: Request) -> dict[str, Any]:
        body = await parse_body(request, OllamaModelRequest)
        return await asyncio.to_thread(_show, server_state(request).client, body.target)

    @router.post("/api/pull", response_model=None)
    async def pull(request: Request) -> Response:
        body = await parse_body(request, OllamaModelRequest)
        state: ServerState = server_state(request)
        name = strip_tag(body.target)
        try:
            card = await asyncio.to_thread(state.client.models.get, name)
        except ModelNotFoundError as exc:
            raise ModelNotFoundError(
                f"pull model manifest: {body.target!r} is not in the Terminus catalog",
                hint=exc.hint,
            ) from exc
        if card.capability not in OLLAMA_CAPABILITIES:
            raise invalid(
                "model", f"{card.id} is a {card.capability} model; Ollama clients cannot use it"
            )
        if body.stream is False:  # failures reach the error handlers with their status
            await asyncio.to_thread(state.client.models.pull, card.id, NullProgress())
            return JSONResponse({"status": "success"})
        lines = _pull_lines(state.client, card)
        return StreamingResponse(_stream(lines), media_type="application/x-ndjson")

    @router.delete("/api/delete", response_model=None)
    async def delete(request: Request) -> Response:
        body = await parse_body(request, OllamaModelRequest)
        await asyncio.to_thread(_delete, server_state(request).client, body.target)
        return Response(status_code=200)

    @router.post("/api/copy", response_model=None)
    async def copy(request: Request) -> Response:
        body = await parse_body(request, OllamaCopyRequest)
        client = server_state(request).client
        source = await asyncio.to_thread(_cached_card, client, body.source)
        await asyncio.to_thread(_copy_card, client, source, body.destination)
        return Response(status_code=200)

    @router.post("/api/create", response_model=None)
    async def create(request: Request) -> Response:
        body = await parse_body(request, OllamaCreateRequest)
        name = body.model or body.name
        if not name:
            raise invalid("model", "model is required: the name of the new model")
        defaults = _create_defaults(body)
        client = server_state(request).client
        assert body.from_ is not None
        source = await asyncio.to_thread(_cached_card, client, body.from_)
        await asyncio.to_thread(_copy_card, client, source, name, **defaults)
        lines = [{"status": "using existing layer sha256:" + f.sha256} for f in source.files] + [
            {"status": "writing manifest"},
            {"status": "success"},
        ]
        if body.stream is False:
            return JSONResponse(lines[-1])

        async def body_lines() -> AsyncIterator[bytes]:
            for line in lines:
                yield ndjson(line)

        return StreamingResponse(body_lines(), media_type="application/x-ndjson")
