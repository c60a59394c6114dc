"""POST /v1/messages (Anthropic's Messages API) and /v1/messages/count_tokens.

Streams are server-sent events named after their type, in Anthropic's order:
``message_start``, ``ping``, then per content block ``content_block_start`` /
``content_block_delta``… / ``content_block_stop``, then ``message_delta`` (stop
reason, usage) and ``message_stop``. Errors, before or during a stream, are in
Anthropic's shape (see :mod:`terminus.server.error_shapes`).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from terminus.server.anthropic_convert import (
    STOP_REASONS,
    CountTokensRequest,
    MessagesRequest,
    completion_arguments,
    message_id,
    to_messages,
    tool_choice,
    tool_specs,
    usage,
    wants_thinking,
)
from terminus.server.error_shapes import anthropic_error
from terminus.server.generation import respond
from terminus.server.middleware import access_record
from terminus.server.schemas import parse_body
from terminus.server.state import server_state
from terminus.server.streaming import NAMED_SSE
from terminus.server.vision import image_fetcher
from terminus.types import (
    ChatEvent,
    Completion,
    ContentDelta,
    Done,
    Stats,
    ThinkingDelta,
    ToolCall,
    ToolCallEvent,
)
from terminus.types.common import Capability


def tool_use_block(call: ToolCall) -> dict[str, Any]:
    return {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}


class MessagesEncoder:
    """Terminus events → Anthropic's message object, or its stream of events."""

    def __init__(self, model: str, *, thinking: bool) -> None:
        self.id = message_id()
        self.model = model
        self.thinking = thinking
        self.stats: Stats | None = None
        self.index = -1  # of the content block being written
        self.open: str | None = None  # its type, while it is open

    def _message(self, content: list[dict[str, Any]], stop_reason: str | None) -> dict[str, Any]:
        prompt = self.stats.prompt_tokens if self.stats else 0
        produced = self.stats.completion_tokens if self.stats else 0
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": usage(prompt, produced),
        }

    def _close(self) -> list[dict[str, Any]]:
        if self.open is None:
            return []
        self.open = None
        return [{"type": "content_block_stop", "index": self.index}]

    def _open(self, kind: str, block: dict[str, Any]) -> list[dict[str, Any]]:
        events = self._close()
        self.index += 1
        self.open = kind
        events.append({"type": "content_block_start", "index": self.index, "content_block": block})
        return events

    def _delta(self, delta: dict[str, Any]) -> dict[str, Any]:
        return {"type": "content_block_delta", "index": self.index, "delta": delta}

    def start(self) -> list[dict[str, Any]]:
        return [{"type": "message_start", "message": self._message([], None)}, {"type": "ping"}]

    def event(self, event: ChatEvent) -> list[dict[str, Any]]:
        if isinstance(event, ContentDelta):
            events = [] if self.open == "text" else self._open("text", {"type": "text", "text": ""})
            return [*events, self._delta({"type": "text_delta", "text": event.text})]
        if isinstance(event, ThinkingDelta):
            if not self.thinking:
                return []
            events = []
            if self.open != "thinking":
                events = self._open(
                    "thinking", {"type": "thinking", "thinking": "", "signature": ""}
                )
            return [*events, self._delta({"type": "thinking_delta", "thinking": event.text})]
        if isinstance(event, ToolCallEvent):
            arguments = json.dumps(event.call.arguments, separators=(",", ":"))
            events = self._open("tool_use", {**tool_use_block(event.call), "input": {}})
            events.append(self._delta({"type": "input_json_delta", "partial_json": arguments}))
            return [*events, *self._close()]
        if isinstance(event, Stats):
            self.stats = event
            return []
        if isinstance(event, Done):
            reason = STOP_REASONS.get(event.stop_reason)
            if reason is None:
                message = event.error or f"the generation ended: {event.stop_reason}"
                return [anthropic_error(500, message)]
            return [
                *self._close(),
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": reason, "stop_sequence": None},
                    "usage": {
                        "input_tokens": self.stats.prompt_tokens if self.stats else 0,
                        "output_tokens": self.stats.completion_tokens if self.stats else 0,
                    },
                },
                {"type": "message_stop"},
            ]
        return []

    def response(self, completion: Completion) -> dict[str, Any]:
        self.stats = completion.stats
        content: list[dict[str, Any]] = []
        if completion.thinking and self.thinking:
            content.append({"type": "thinking", "thinking": completion.thinking, "signature": ""})
        if completion.text:
            content.append({"type": "text", "text": completion.text})
        content.extend(tool_use_block(call) for call in completion.tool_calls)
        return self._message(content, STOP_REASONS.get(completion.stop_reason, "end_turn"))


def add_anthropic_routes(router: APIRouter) -> None:
    @router.post("/v1/messages", response_model=None)
    async def messages(request: Request) -> Response:
        body = await parse_body(request, MessagesRequest)
        state = server_state(request)
        record = access_record(request)
        record.model, record.stream = body.model, bool(body.stream)
        messages, kwargs = await asyncio.to_thread(  # images are decoded off the event loop
            completion_arguments, body, image_fetcher(state.settings)
        )
        card = await state.resolve(body.model, Capability.CHAT)
        record.model = card.id
        stream = state.aclient.completion(messages, model=card.id, **kwargs)  # validates: 400s here
        encoder = MessagesEncoder(card.id, thinking=wants_thinking(body.thinking))
        return await respond(
            request,
            state,
            card,
            stream,
            encoder,
            record,
            streaming=bool(body.stream),
            framing=NAMED_SSE,
        )

    @router.post("/v1/messages/count_tokens")
    async def count_tokens(request: Request) -> dict[str, int]:
        """The prompt's exact token count under the model's chat template (and tools).

        Counted by the engine itself: one step of generation over the prompt.
        """
        body = await parse_body(request, CountTokensRequest)
        state = server_state(request)
        record = access_record(request)
        record.model = body.model
        tools = tool_specs(body.tools)
        choice = tool_choice(body.tool_choice, tools)
        messages = await asyncio.to_thread(
            to_messages, body.system, body.messages, image_fetcher(state.settings)
        )
        card = await state.resolve(body.model, Capability.CHAT)
        record.model = card.id
        stream = state.aclient.completion(
            messages, model=card.id, tools=tools, tool_choice=choice, max_tokens=1
        )
        slot = state.admit()
        try:
            await state.ensure_loaded(card.id)
            events = [event async for event in stream]
        finally:
            slot.release()
        stats = next((e for e in events if isinstance(e, Stats)), None)
        return {"input_tokens": stats.prompt_tokens if stats else 0}
