"""Ollama's native API (``/api/…``) on the same server, for apps configured for Ollama.

Generation goes through the same driver as the OpenAI endpoints (admission, loading,
cancellation on disconnect), streamed as newline-delimited JSON, Ollama's default.
Model administration (tags, show, pull, copy, create, delete) works on the Terminus
catalog and cache; see :mod:`terminus.server.ollama_models`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from terminus.errors import ModelNotFoundError
from terminus.models.card import ModelCard
from terminus.server.embeddings import embed as embed_texts
from terminus.server.errors import invalid, unsupported
from terminus.server.generation import respond
from terminus.server.middleware import access_record
from terminus.server.ollama_convert import (
    OllamaChatRequest,
    OllamaEmbeddingsRequest,
    OllamaEmbedRequest,
    OllamaGenerateRequest,
    chat_kwargs,
    check_num_ctx,
    generate_arguments,
    keep_alive_seconds,
    now_rfc3339,
    ns,
    strip_tag,
    timing_fields,
    to_messages,
    tool_call_object,
    wants_thinking,
)
from terminus.server.ollama_models import add_ollama_model_routes
from terminus.server.schemas import parse_body
from terminus.server.state import ServerState, server_state
from terminus.server.streaming import NDJSON
from terminus.types import (
    ChatEvent,
    Completion,
    ContentDelta,
    Done,
    Stats,
    ThinkingDelta,
    ToolCallEvent,
)
from terminus.types.common import Capability

#: The Ollama API version these endpoints follow (clients gate features on it).
OLLAMA_API_VERSION = "0.12.0"
DONE_REASONS = {"stop": "stop", "length": "length", "tool_calls": "stop"}


class OllamaEncoder:
    """Terminus events → Ollama's /api/chat or /api/generate objects."""

    def __init__(
        self, model: str, *, chat: bool, thinking: bool, started: float, load_s: float
    ) -> None:
        self.model = model
        self.chat = chat
        self.thinking = thinking
        self.started = started
        self.load_s = load_s
        self.stats: Stats | None = None
        self.calls = 0

    def _object(self, done: bool, text: str = "", **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "created_at": now_rfc3339()}
        if self.chat:
            message: dict[str, Any] = {"role": "assistant", "content": text}
            message.update(extra)
            body["message"] = message
        else:
            body["response"] = text
            body.update(extra)
        body["done"] = done
        return body

    def _final(self, stop_reason: str, text: str = "", **extra: Any) -> dict[str, Any]:
        body = self._object(True, text, **extra)
        body["done_reason"] = DONE_REASONS.get(stop_reason, stop_reason)
        body.update(timing_fields(self.stats, self.load_s, time.perf_counter() - self.started))
        return body

    def start(self) -> list[dict[str, Any]]:
        return []

    def event(self, event: ChatEvent) -> list[dict[str, Any]]:
        if isinstance(event, ContentDelta):
            return [self._object(False, event.text)]
        if isinstance(event, ThinkingDelta):
            return [self._object(False, thinking=event.text)] if self.thinking else []
        if isinstance(event, ToolCallEvent):
            self.calls += 1
            call = tool_call_object(event.call, self.calls - 1)
            return [self._object(False, tool_calls=[call])] if self.chat else []
        if isinstance(event, Stats):
            self.stats = event
            return []
        if isinstance(event, Done):
            if event.stop_reason not in DONE_REASONS:
                reason = event.error or f"the generation ended: {event.stop_reason}"
                return [{"error": reason}]
            return [self._final(event.stop_reason)]
        return []

    def response(self, completion: Completion) -> dict[str, Any]:
        self.stats = completion.stats
        extra: dict[str, Any] = {}
        if completion.thinking and self.thinking:
            extra["thinking"] = completion.thinking
        if completion.tool_calls and self.chat:
            extra["tool_calls"] = [
                tool_call_object(c, i) for i, c in enumerate(completion.tool_calls)
            ]
        return self._final(completion.stop_reason, completion.text, **extra)


async def resolve(state: ServerState, name: str, capability: Capability | None) -> ModelCard:
    """The card for an Ollama model name (``:latest`` optional); unknown → 404."""
    try:
        return await state.resolve(strip_tag(name), capability)
    except ModelNotFoundError as exc:
        raise ModelNotFoundError(
            f"model {name!r} not found", hint=exc.hint or "see GET /api/tags"
        ) from exc


async def load_timed(state: ServerState, card: ModelCard) -> float:
    started = time.perf_counter()
    await state.ensure_loaded(card.id)
    return time.perf_counter() - started


def loaded_context(state: ServerState, card: ModelCard) -> int | None:
    for info in state.client.loaded_models():
        if info.id == card.id:
            return info.context_length
    return None


async def apply_keep_alive(state: ServerState, card: ModelCard, seconds: float | None) -> None:
    """Ollama's semantics: every request sets how long the model stays loaded once idle —
    its ``keep_alive`` (negative: for ever; 0: unload when its requests end), or the
    server's ``--keep-alive`` when the request names none."""
    await asyncio.to_thread(state.client.manager.set_keep_alive, card.id, seconds)


def _load_answer(model: str, chat: bool, reason: str) -> dict[str, Any]:
    """The answer to an empty request, which only loads (or unloads) the model."""
    body: dict[str, Any] = {"model": model, "created_at": now_rfc3339()}
    if chat:
        body["message"] = {"role": "assistant", "content": ""}
    else:
        body["response"] = ""
    return {**body, "done": True, "done_reason": reason}


async def _generation(
    request: Request,
    body: OllamaChatRequest | OllamaGenerateRequest,
    *,
    chat: bool,
) -> Response:
    started = time.perf_counter()
    state = server_state(request)
    record = access_record(request)
    streaming = body.stream is not False
    record.model, record.stream = body.model, streaming
    keep_alive = keep_alive_seconds(body.keep_alive)
    thinking = wants_thinking(body.think)
    card = await resolve(state, body.model, Capability.CHAT if chat else None)
    record.model = card.id
    empty = not body.messages if isinstance(body, OllamaChatRequest) else not body.prompt
    if empty:  # Ollama's way to load a model, or with keep_alive 0 to unload it
        if keep_alive == 0:
            await asyncio.to_thread(state.client.unload_model, card.id)
            return JSONResponse(_load_answer(body.model, chat, "unload"))
        # the keep-alive first: set after the load, an earlier request's 0 could unload it
        await apply_keep_alive(state, card, keep_alive)
        await state.ensure_loaded(card.id)
        return JSONResponse(_load_answer(body.model, chat, "load"))
    if isinstance(body, OllamaChatRequest):
        assert body.messages is not None
        messages: Any = to_messages(body.messages)
        kwargs = chat_kwargs(body)
        raw = False
    else:
        base_model = card.capability == Capability.COMPLETION
        raw, messages, kwargs = generate_arguments(body, base_model=base_model)
    if raw and card.capability == Capability.EMBED:
        raise invalid("model", f"{card.id} is an embedding model; it cannot generate text")
    if not raw and card.capability != Capability.CHAT:
        await state.resolve(card.id, Capability.CHAT)  # the 400 that says why
    await apply_keep_alive(state, card, keep_alive)  # applies once the request ends
    load_s = await load_timed(state, card)
    check_num_ctx(body.options, loaded_context(state, card))
    if raw:
        stream = state.aclient.text_completion(messages, model=card.id, **kwargs)
    else:
        stream = state.aclient.completion(messages, model=card.id, **kwargs)
    encoder = OllamaEncoder(
        body.model, chat=chat, thinking=thinking, started=started, load_s=load_s
    )
    return await respond(
        request, state, card, stream, encoder, record, streaming=streaming, framing=NDJSON
    )


def _embed_answer(
    model: str, vectors: Any, prompt_tokens: int, load_s: float, total_s: float
) -> dict[str, Any]:
    return {
        "model": model,
        "embeddings": vectors.tolist(),
        "total_duration": ns(total_s),
        "load_duration": ns(load_s),
        "prompt_eval_count": prompt_tokens,
    }


async def _embed(
    request: Request, model: str, texts: list[str], keep_alive: str | float | None, dims: int | None
) -> tuple[Any, int, float]:
    """(vectors, prompt tokens, load seconds) for ``texts``."""
    state = server_state(request)
    record = access_record(request)
    record.model = model
    seconds = keep_alive_seconds(keep_alive)
    card = await resolve(state, model, Capability.EMBED)
    record.model = card.id
    await apply_keep_alive(state, card, seconds)  # before the load, as for generation
    slot = state.admit()
    try:
        load_s = await load_timed(state, card)
        result, _ = await asyncio.to_thread(embed_texts, state.client, card, texts, "float", dims)
    finally:
        slot.release()
    record.prompt_tokens = result.prompt_tokens
    return result.vectors, result.prompt_tokens, load_s


def add_ollama_routes(router: APIRouter) -> None:
    @router.head("/", include_in_schema=False)
    async def probe() -> Response:
        """Ollama clients probe ``HEAD /`` to see whether the server is up."""
        return Response(status_code=200)

    @router.get("/api/version")
    async def version() -> dict[str, str]:
        from terminus import __version__

        return {"version": OLLAMA_API_VERSION, "terminus": __version__}

    @router.post("/api/chat", response_model=None)
    async def chat(request: Request) -> Response:
        body = await parse_body(request, OllamaChatRequest)
        return await _generation(request, body, chat=True)

    @router.post("/api/generate", response_model=None)
    async def generate(request: Request) -> Response:
        body = await parse_body(request, OllamaGenerateRequest)
        return await _generation(request, body, chat=False)

    @router.post("/api/embed")
    async def embed(request: Request) -> dict[str, Any]:
        started = time.perf_counter()
        body = await parse_body(request, OllamaEmbedRequest)
        raw = body.input
        texts = [raw] if isinstance(raw, str) else list(raw or ())
        if not texts:
            raise invalid("input", "input must be a string or a non-empty list of strings")
        if any(not text for text in texts):
            raise invalid("input", "every input text needs content")
        if body.truncate is False:  # the embedding engines always cut to the model's input
            raise unsupported("truncate", "truncate: false (long inputs are always truncated)")
        vectors, tokens, load_s = await _embed(
            request, body.model, texts, body.keep_alive, body.dimensions
        )
        return _embed_answer(body.model, vectors, tokens, load_s, time.perf_counter() - started)

    @router.post("/api/embeddings")
    async def embeddings(request: Request) -> dict[str, Any]:
        body = await parse_body(request, OllamaEmbeddingsRequest)
        if not body.prompt:
            raise invalid("prompt", "prompt must be a non-empty string")
        vectors, _, _ = await _embed(request, body.model, [body.prompt], body.keep_alive, None)
        return {"embedding": vectors[0].tolist()}

    add_ollama_model_routes(router)
