"""POST /v1/completions: raw prompt continuation (``Terminus.text_completion``)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from terminus.server.completions_batch import respond_batch
from terminus.server.convert import choices, completion_arguments, seeded
from terminus.server.generation import FINISH_REASONS, end_error, respond, respond_n, usage
from terminus.server.lifecycle import apply_keep_alive
from terminus.server.logprobs import text_logprobs
from terminus.server.middleware import access_record
from terminus.server.schemas import CompletionRequest, parse_body
from terminus.server.state import server_state
from terminus.types import ChatEvent, Completion, ContentDelta, Done, Stats, TokenLogprobs


class TextEncoder:
    """Terminus events → ``text_completion`` objects (whole, or one per chunk)."""

    def __init__(
        self, model: str, *, include_usage: bool = False, logprobs: int | None = None
    ) -> None:
        self.id = "cmpl-" + uuid.uuid4().hex
        self.created = int(time.time())
        self.model = model
        self.include_usage = include_usage
        self.logprobs = logprobs  # alternatives per token; None: not asked for
        self.pending: list[TokenLogprobs] = []
        self.offset = 0  # characters of text sent so far (for text_offset)
        self.stats: Stats | None = None

    def _object(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "text_completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": choices,
        }

    def _chunk(self, text: str, finish_reason: str | None = None) -> dict[str, Any]:
        logprobs = None
        if self.logprobs is not None and text and self.pending:
            logprobs = text_logprobs(self.pending, self.logprobs, self.offset)
            self.pending = []
        self.offset += len(text)
        chunk = self._object(
            [{"text": text, "index": 0, "logprobs": logprobs, "finish_reason": finish_reason}]
        )
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def start(self) -> list[dict[str, Any]]:
        return []

    def event(self, event: ChatEvent) -> list[dict[str, Any]]:
        if isinstance(event, ContentDelta):
            return [self._chunk(event.text)]
        if isinstance(event, TokenLogprobs):
            self.pending.append(event)
            return []
        if isinstance(event, Stats):
            self.stats = event
            return []
        if isinstance(event, Done):
            reason = FINISH_REASONS.get(event.stop_reason)
            if reason is None:
                return [end_error(event)]
            chunks = [self._chunk("", reason)]
            if self.include_usage:
                chunks.append({**self._object([]), "usage": usage(self.stats)})
            return chunks
        return []  # thinking and tool calls have no place in a text completion

    def response(self, completion: Completion) -> dict[str, Any]:
        choice = {
            "text": completion.text,
            "index": 0,
            "logprobs": None
            if self.logprobs is None
            else text_logprobs(completion.logprobs, self.logprobs),
            "finish_reason": FINISH_REASONS.get(completion.stop_reason, "stop"),
        }
        return {**self._object([choice]), "usage": usage(completion.stats)}


def add_completion_routes(router: APIRouter) -> None:
    @router.post("/v1/completions", response_model=None)
    async def completions(request: Request) -> Response:
        body = await parse_body(request, CompletionRequest)
        state = server_state(request)
        record = access_record(request)
        record.model, record.stream = body.model, bool(body.stream)
        prompts, kwargs = completion_arguments(body)
        card = await state.resolve(body.model)
        record.model = card.id
        await apply_keep_alive(state, card.id, (body.model_extra or {}).get("keep_alive"))
        n = choices(body)
        if body.echo or len(prompts) > 1:
            return await respond_batch(request, state, card, body, prompts, kwargs, n, record)
        prompt = prompts[0]
        encoder = TextEncoder(card.id, include_usage=body.include_usage, logprobs=body.logprobs)
        if n > 1:
            streams = [
                state.aclient.text_completion(prompt, model=card.id, **seeded(kwargs, i))
                for i in range(n)
            ]
            return await respond_n(
                request, state, card, streams, encoder, record, streaming=bool(body.stream)
            )
        stream = state.aclient.text_completion(prompt, model=card.id, **kwargs)  # validates: 400s
        return await respond(
            request, state, card, stream, encoder, record, streaming=bool(body.stream)
        )
