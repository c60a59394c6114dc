"""POST /v1/completions: raw prompt continuation (``Terminus.text_completion``)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from terminus.server.convert import completion_arguments
from terminus.server.generation import FINISH_REASONS, end_error, respond, usage
from terminus.server.middleware import access_record
from terminus.server.schemas import CompletionRequest, parse_body
from terminus.server.state import server_state
from terminus.types import ChatEvent, Completion, ContentDelta, Done, Stats


class TextEncoder:
    """Terminus events → ``text_completion`` objects (whole, or one per chunk)."""

    def __init__(self, model: str, *, include_usage: bool = False) -> None:
        self.id = "cmpl-" + uuid.uuid4().hex
        self.created = int(time.time())
        self.model = model
        self.include_usage = include_usage
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
        chunk = self._object(
            [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish_reason}]
        )
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def start(self) -> list[dict[str, Any]]:
        return []

    def event(self, event: ChatEvent) -> list[dict[str, Any]]:
        if isinstance(event, ContentDelta):
            return [self._chunk(event.text)]
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
            "logprobs": None,
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
        prompt, kwargs = completion_arguments(body)
        card = await state.resolve(body.model)
        record.model = card.id
        stream = state.aclient.text_completion(prompt, model=card.id, **kwargs)  # validates: 400s
        encoder = TextEncoder(card.id, include_usage=body.include_usage)
        return await respond(
            request, state, card, stream, encoder, record, streaming=bool(body.stream)
        )
