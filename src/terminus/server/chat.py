"""POST /v1/chat/completions."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from terminus.server.convert import chat_arguments, choices, seeded
from terminus.server.generation import FINISH_REASONS, end_error, respond, respond_n, usage
from terminus.server.lifecycle import apply_keep_alive
from terminus.server.logprobs import chat_logprobs
from terminus.server.middleware import access_record
from terminus.server.schemas import ChatCompletionRequest, parse_body
from terminus.server.state import server_state
from terminus.server.vision import image_fetcher
from terminus.types import (
    ChatEvent,
    Completion,
    ContentDelta,
    Done,
    Stats,
    ThinkingDelta,
    TokenLogprobs,
    ToolCall,
    ToolCallEvent,
)
from terminus.types.common import Capability


def tool_call_dict(call: ToolCall, index: int | None = None) -> dict[str, Any]:
    """A call in OpenAI's shape: the arguments are a JSON string."""
    out: dict[str, Any] = {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
    }
    if index is not None:
        out = {"index": index, **out}
    return out


class ChatEncoder:
    """Terminus events → ``chat.completion`` / ``chat.completion.chunk`` objects."""

    def __init__(
        self, model: str, *, include_usage: bool = False, logprobs: int | None = None
    ) -> None:
        self.id = "chatcmpl-" + uuid.uuid4().hex
        self.created = int(time.time())
        self.model = model
        self.include_usage = include_usage
        #: Alternatives to show per token; None: no logprobs asked for.
        self.logprobs = logprobs
        self.pending: list[TokenLogprobs] = []  # reported before the text they belong to
        self.stats: Stats | None = None
        self.calls = 0

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        logprobs = None
        if self.logprobs is not None and "content" in delta and self.pending:
            logprobs = chat_logprobs(self.pending, self.logprobs)
            self.pending = []
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": [
                {"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}
            ],
        }
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def start(self) -> list[dict[str, Any]]:
        return [self._chunk({"role": "assistant", "content": ""})]

    def event(self, event: ChatEvent) -> list[dict[str, Any]]:
        if isinstance(event, ContentDelta):
            return [self._chunk({"content": event.text})]
        if isinstance(event, TokenLogprobs):
            self.pending.append(event)
            return []
        if isinstance(event, ThinkingDelta):
            return [self._chunk({"reasoning_content": event.text})]
        if isinstance(event, ToolCallEvent):
            self.calls += 1
            return [self._chunk({"tool_calls": [tool_call_dict(event.call, self.calls - 1)]})]
        if isinstance(event, Stats):
            self.stats = event
            return []
        if isinstance(event, Done):
            reason = FINISH_REASONS.get(event.stop_reason)
            if reason is None:
                return [end_error(event)]
            chunks = [self._chunk({}, reason)]
            if self.include_usage:
                chunks.append(
                    {
                        "id": self.id,
                        "object": "chat.completion.chunk",
                        "created": self.created,
                        "model": self.model,
                        "system_fingerprint": None,
                        "choices": [],
                        "usage": usage(self.stats),
                    }
                )
            return chunks
        return []

    def response(self, completion: Completion) -> dict[str, Any]:
        calls = [tool_call_dict(c) for c in completion.tool_calls]
        message: dict[str, Any] = {
            "role": "assistant",
            "content": completion.text if completion.text or not calls else None,
            "refusal": None,
        }
        if calls:
            message["tool_calls"] = calls
        if completion.thinking:
            message["reasoning_content"] = completion.thinking
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None
                    if self.logprobs is None
                    else chat_logprobs(completion.logprobs, self.logprobs),
                    "finish_reason": FINISH_REASONS.get(completion.stop_reason, "stop"),
                }
            ],
            "usage": usage(completion.stats),
        }


def add_chat_routes(router: APIRouter) -> None:
    @router.post("/v1/chat/completions", response_model=None)
    async def chat_completions(request: Request) -> Response:
        body = await parse_body(request, ChatCompletionRequest)
        state = server_state(request)
        record = access_record(request)
        record.model, record.stream = body.model, bool(body.stream)
        # Images are decoded and checked off the event loop (and maybe fetched).
        messages, kwargs = await asyncio.to_thread(
            chat_arguments, body, image_fetcher(state.settings)
        )
        card = await state.resolve(body.model, Capability.CHAT)
        record.model = card.id
        await apply_keep_alive(state, card.id, (body.model_extra or {}).get("keep_alive"))
        shown = (body.top_logprobs or 0) if body.logprobs else None
        encoder = ChatEncoder(card.id, include_usage=body.include_usage, logprobs=shown)
        n = choices(body)
        if n > 1:
            streams = [
                state.aclient.completion(messages, model=card.id, **seeded(kwargs, i))
                for i in range(n)
            ]
            return await respond_n(
                request, state, card, streams, encoder, record, streaming=bool(body.stream)
            )
        stream = state.aclient.completion(messages, model=card.id, **kwargs)  # validates: 400s here
        return await respond(
            request, state, card, stream, encoder, record, streaming=bool(body.stream)
        )
