"""OpenAI's Responses API: ``/v1/responses`` create, retrieve, delete, input items.

A request's context is the stored context of ``previous_response_id`` (its input
items, then its output items), then this request's input; ``instructions`` apply
to this request only, as in OpenAI's API. Finished responses with ``store`` (the
default) are written to the durable store before the last event is sent, so a
client that retrieves or continues a response right after it ends finds it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from terminus.client.streams import AsyncCompletionStream
from terminus.errors import EngineError, TerminusError
from terminus.runtime.keepalive import parse_keep_alive
from terminus.server.agent_tools import resolve_tools, toolbox
from terminus.server.errors import APIError, describe, invalid
from terminus.server.middleware import AccessRecord, access_record
from terminus.server.responses_agent import AgentResponseBuilder, server_tool_specs, start_agent
from terminus.server.responses_convert import (
    ResponsesRequest,
    completion_kwargs,
    input_items,
    to_messages,
)
from terminus.server.responses_encode import ResponseBuilder
from terminus.server.responses_store import ResponseStore
from terminus.server.schemas import parse_body
from terminus.server.state import ServerState, server_state
from terminus.server.streaming import EventStreamResponse, aclose, cancel_on_disconnect
from terminus.server.vision import image_fetcher
from terminus.types import ChatEvent, Done, Stats, collect_completion
from terminus.types.common import Capability

#: Output item types a continued conversation carries forward.
_CARRIED = frozenset({"message", "function_call"})


def _not_found(response_id: str, param: str | None = None) -> APIError:
    return APIError(
        404, f"Response with id '{response_id}' not found.", code="not_found", param=param
    )


class SSEWriter:
    """Responses-style SSE: an ``event:`` line naming the type, and a sequence number."""

    def __init__(self) -> None:
        self.sequence = 0

    def __call__(self, event: dict[str, Any]) -> bytes:
        payload = {**event, "sequence_number": self.sequence}
        self.sequence += 1
        data = json.dumps(payload, separators=(",", ":"))
        return f"event: {event['type']}\ndata: {data}\n\n".encode()


def add_response_routes(router: APIRouter, store: ResponseStore) -> None:
    @router.post("/v1/responses", response_model=None)
    async def create_response(request: Request) -> Response:
        body = await parse_body(request, ResponsesRequest)
        state = server_state(request)
        record = access_record(request)
        record.model, record.stream = body.model, bool(body.stream)
        server_tools = server_tool_specs(body)
        kwargs = {} if server_tools else completion_kwargs(body)
        keep_alive = parse_keep_alive(body.keep_alive)
        context = await _context(store, body)
        messages = await asyncio.to_thread(  # images are decoded off the event loop
            to_messages, context, body.instructions, image_fetcher(state.settings)
        )
        if not any(m.role != "system" for m in messages):
            raise invalid("input", "the conversation has no input for the model")
        card = await state.resolve(body.model, Capability.CHAT)
        record.model = card.id
        builder: ResponseBuilder
        if server_tools:  # tools run here, through the agent loop
            tools = await resolve_tools(toolbox(request), server_tools)
            stream: Any = start_agent(state, body, list(messages), card.id, tools)
            builder = AgentResponseBuilder(body, card.id, tools)
        else:
            stream = state.aclient.completion(messages, model=card.id, **kwargs)  # 400s here
            builder = ResponseBuilder(body, card.id)
        run = _Run(state, store, body, context, builder, record, keep_alive)
        return await run.respond(request, stream)

    @router.get("/v1/responses/{response_id}")
    async def retrieve_response(response_id: str) -> dict[str, Any]:
        stored = await asyncio.to_thread(store.get, response_id)
        if stored is None:
            raise _not_found(response_id)
        return stored.response

    @router.delete("/v1/responses/{response_id}")
    async def delete_response(response_id: str) -> dict[str, Any]:
        if not await asyncio.to_thread(store.delete, response_id):
            raise _not_found(response_id)
        return {"id": response_id, "object": "response", "deleted": True}

    @router.get("/v1/responses/{response_id}/input_items")
    async def list_input_items(
        response_id: str, order: str = "desc", limit: int = 20, after: str | None = None
    ) -> dict[str, Any]:
        if order not in ("asc", "desc"):
            raise invalid("order", "order must be 'asc' or 'desc'")
        if not 1 <= limit <= 100:
            raise invalid("limit", "limit must be between 1 and 100")
        stored = await asyncio.to_thread(store.get, response_id)
        if stored is None:
            raise _not_found(response_id)
        items = stored.context if order == "asc" else stored.context[::-1]
        if after is not None:
            ids = [item.get("id") for item in items]
            if after not in ids:
                raise invalid("after", f"no input item {after!r} in this response")
            items = items[ids.index(after) + 1 :]
        page = items[:limit]
        return {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(items) > limit,
        }


async def _context(store: ResponseStore, body: ResponsesRequest) -> list[dict[str, Any]]:
    items = input_items(body)
    if body.previous_response_id is None:
        return items
    previous = await asyncio.to_thread(store.get, body.previous_response_id)
    if previous is None:
        raise _not_found(body.previous_response_id, "previous_response_id")
    carried = [i for i in previous.response.get("output", []) if i.get("type") in _CARRIED]
    return [*previous.context, *carried, *items]


class _Run:
    """One create request, streamed or not: admission, loading, storing, keep-alive."""

    def __init__(
        self,
        state: ServerState,
        store: ResponseStore,
        body: ResponsesRequest,
        context: list[dict[str, Any]],
        builder: ResponseBuilder,
        record: AccessRecord,
        keep_alive: float | None,
    ) -> None:
        self.state = state
        self.store = store
        self.body = body
        self.context = context
        self.builder = builder
        self.record = record
        self.keep_alive = keep_alive

    async def respond(self, request: Request, stream: AsyncCompletionStream) -> Response:
        slot = self.state.admit()
        handed_off = False
        try:
            await self.state.ensure_loaded(self.builder.model)
            events = stream.__aiter__()
            if not self.body.stream:
                async with cancel_on_disconnect(request.receive, stream.cancel):
                    collected = [event async for event in events]
                completion = collect_completion(collected)
                self.record.note(completion.stats, completion.stop_reason)
                if completion.stop_reason == "error":
                    raise EngineError(completion.error or "the engine failed")
                for event in collected:
                    self.builder.event(event)
                await self._finish()
                return JSONResponse(self.builder.snapshot())
            async with cancel_on_disconnect(request.receive, stream.cancel):
                first = await anext(events)  # errors before generation keep their status
            body = self._sse(first, events)

            def close() -> None:
                stream.cancel()
                slot.release()

            handed_off = True
            return EventStreamResponse(body, on_disconnect=stream.cancel, on_close=close)
        finally:
            if not handed_off:
                slot.release()

    async def _finish(self) -> None:
        """Store the finished response (not a cancelled one) and apply the keep-alive."""
        if self.body.store is not False and self.builder.status != "cancelled":
            await asyncio.to_thread(self.store.put, self.builder.snapshot(), self.context)
        if self.keep_alive is not None:
            await asyncio.to_thread(
                self.state.client.manager.touch, self.builder.model, self.keep_alive
            )

    async def _sse(
        self, first: ChatEvent, events: AsyncIterator[ChatEvent]
    ) -> AsyncIterator[bytes]:
        write = SSEWriter()
        builder = self.builder
        stats: Stats | None = None
        try:
            for item in builder.start():
                yield write(item)
            event = first
            while True:
                if isinstance(event, Stats):
                    stats = event
                produced = builder.event(event)
                if isinstance(event, Done):
                    self.record.note(stats, event.stop_reason)
                    await self._finish()  # stored before the client hears it is done
                for item in produced:
                    yield write(item)
                if isinstance(event, Done):
                    break
                event = await anext(events)
        except Exception as exc:
            self.record.note(stats, "error")
            if not isinstance(exc, TerminusError):
                self.state.log.exception(
                    json.dumps({"event": "stream_failed", "model": self.record.model})
                )
            error = describe(exc)[1]["error"]
            for item in builder.fail(str(error["code"]), str(error["message"])):
                yield write(item)
        finally:
            await aclose(events)
