"""Driving one Terminus stream for one HTTP request, streamed or not.

Both OpenAI endpoints share this: admission (429), loading with the server's
options, the first event awaited before any byte is sent (so errors that come
before generation — unknown model, prompt too long — keep their HTTP status),
cancellation when the client disconnects, and the request's access-log fields.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from terminus.client.streams import AsyncCompletionStream
from terminus.errors import EngineError, TerminusError
from terminus.models.card import ModelCard
from terminus.server.choices import ChoicesEncoder, MergedStream
from terminus.server.error_shapes import reshape
from terminus.server.errors import describe
from terminus.server.logprobs import merge_choices
from terminus.server.middleware import AccessRecord
from terminus.server.state import ServerState, shutting_down
from terminus.server.streaming import (
    SSE,
    EventStreamResponse,
    Framing,
    aclose,
    cancel_on_disconnect,
)
from terminus.types import ChatEvent, Completion, Done, Stats, collect_completion

#: Terminus stop reasons OpenAI has a name for; ``cancelled`` and ``error`` end in an error.
FINISH_REASONS = {"stop": "stop", "length": "length", "tool_calls": "tool_calls"}


class EventStream(Protocol):
    """A Terminus stream of events (``AsyncCompletionStream``, or several merged)."""

    def __aiter__(self) -> AsyncIterator[Any]: ...

    def cancel(self) -> None: ...


class Encoder(Protocol):
    """Turns Terminus events into one endpoint's OpenAI objects."""

    def start(self) -> list[dict[str, Any]]: ...

    def event(self, event: ChatEvent) -> list[dict[str, Any]]: ...

    def response(self, completion: Completion) -> dict[str, Any]: ...


def usage(stats: Stats | None) -> dict[str, int]:
    prompt = stats.prompt_tokens if stats else 0
    completion = stats.completion_tokens if stats else 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def end_error(done: Done) -> dict[str, Any]:
    """The error event that ends a stream that did not finish normally."""
    if done.stop_reason == "cancelled":
        return {
            "error": {
                "message": "the generation was cancelled",
                "type": "server_error",
                "param": None,
                "code": "cancelled",
            }
        }
    return describe(EngineError(done.error or "the engine failed"))[1]


async def respond(
    request: Request,
    state: ServerState,
    card: ModelCard,
    stream: EventStream,
    encoder: Encoder,
    record: AccessRecord,
    *,
    streaming: bool,
    framing: Framing = SSE,
    slots: int = 1,
) -> Response:
    """Drive ``stream`` for one request; ``slots``: how many generations it runs at once."""
    held = [state.admit()]
    held[0].on_drain = stream.cancel
    handed_off = False
    try:
        while len(held) < slots:  # inside the try: a 429 gives back the slots taken
            held.append(state.admit())
            held[-1].on_drain = stream.cancel
        await state.ensure_loaded(card.id)
        events = stream.__aiter__()
        if not streaming:
            async with cancel_on_disconnect(request.receive, stream.cancel):
                collected = [event async for event in events]
            completion = collect_completion(collected)
            record.note(completion.stats, completion.stop_reason)
            if completion.stop_reason == "cancelled" and state.draining:
                raise shutting_down()
            if completion.stop_reason == "error":
                raise EngineError(completion.error or "the engine failed")
            return JSONResponse(encoder.response(completion))
        async with cancel_on_disconnect(request.receive, stream.cancel):
            first = await anext(events)  # errors before generation keep their status
        body = _stream_body(first, events, encoder, record, state, framing, request.url.path)

        def close() -> None:  # however the response ends: engine stopped, slots given back
            stream.cancel()
            for slot in held:
                slot.release()

        handed_off = True
        return EventStreamResponse(
            body, on_disconnect=stream.cancel, on_close=close, media_type=framing.media_type
        )
    finally:
        if not handed_off:
            for slot in held:
                slot.release()


async def collect_choices(
    request: Request,
    state: ServerState,
    card: ModelCard,
    streams: list[AsyncCompletionStream],
) -> list[Completion]:
    """Run ``streams`` side by side, each in its own slot, and collect each one.

    Each is admitted like a request of its own (429 when the server cannot take all of
    them); a disconnect cancels them all; a failed generation raises ``EngineError``.
    """
    slots = []
    try:
        for stream in streams:
            slots.append(state.admit())
            slots[-1].on_drain = stream.cancel
        await state.ensure_loaded(card.id)

        async def collect(stream: AsyncCompletionStream) -> Completion:
            return collect_completion([event async for event in stream])

        def cancel_all() -> None:
            for stream in streams:
                stream.cancel()

        async with cancel_on_disconnect(request.receive, cancel_all):
            completions = await asyncio.gather(*(collect(s) for s in streams))
    finally:
        for slot in slots:
            slot.release()
    for completion in completions:
        if completion.stop_reason == "error":
            raise EngineError(completion.error or "the engine failed")
    return list(completions)


async def respond_choices(
    request: Request,
    state: ServerState,
    card: ModelCard,
    streams: list[AsyncCompletionStream],
    encoder: Encoder,
    record: AccessRecord,
) -> Response:
    """``n > 1``: the generations run side by side, each in its own slot; one answer."""
    completions = await collect_choices(request, state, card, streams)
    bodies = [encoder.response(completion) for completion in completions]
    merged = merge_choices(bodies)
    usage_ = merged["usage"]
    record.prompt_tokens, record.completion_tokens = (
        usage_["prompt_tokens"],
        usage_["completion_tokens"],
    )
    record.finish_reason = completions[0].stop_reason
    return JSONResponse(merged)


async def respond_n(
    request: Request,
    state: ServerState,
    card: ModelCard,
    streams: list[AsyncCompletionStream],
    encoder: Encoder,
    record: AccessRecord,
    *,
    streaming: bool,
) -> Response:
    """``n > 1`` choices, streamed (one merged stream, a slot each) or as one answer."""
    if not streaming:
        return await respond_choices(request, state, card, streams, encoder, record)
    encoders = [encoder, *(copy.deepcopy(encoder) for _ in streams[1:])]
    return await respond(
        request,
        state,
        card,
        MergedStream(streams),
        ChoicesEncoder(encoders),
        record,
        streaming=True,
        slots=len(streams),
    )


def stream_error(exc: BaseException, path: str) -> dict[str, Any]:
    """The error chunk that ends a failed stream, in the shape of ``path``'s API."""
    status, body, _ = describe(exc)
    return reshape(path, status, body)


async def _stream_body(
    first: ChatEvent,
    events: AsyncIterator[ChatEvent],
    encoder: Encoder,
    record: AccessRecord,
    state: ServerState,
    framing: Framing,
    path: str,
) -> AsyncIterator[bytes]:
    stats: Stats | None = None
    encode = framing.encode
    try:
        for chunk in encoder.start():
            yield encode(chunk)
        event = first
        while True:
            if isinstance(event, Stats):
                stats = event
            elif isinstance(event, Done):
                record.note(stats, event.stop_reason)
                if event.stop_reason == "cancelled" and state.draining:
                    yield encode(stream_error(shutting_down(), path))
                    break
            for chunk in encoder.event(event):
                yield encode(chunk)
            if isinstance(event, Done):
                break
            event = await anext(events)
    except TerminusError as exc:
        record.note(stats, "error")
        yield encode(stream_error(exc, path))
    except Exception as exc:
        record.note(stats, "error")
        state.log.exception(json.dumps({"event": "stream_failed", "model": record.model}))
        yield encode(stream_error(exc, path))
    finally:
        await aclose(events)  # now, not whenever the garbage collector gets to it
    if framing.end:
        yield framing.end
