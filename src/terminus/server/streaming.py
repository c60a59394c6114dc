"""Server-sent events, and cancelling a generation when its client goes away."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

DONE = b"data: [DONE]\n\n"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse(payload: dict[str, Any]) -> bytes:
    """One SSE event: a ``data:`` line of compact JSON and a blank line."""
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def ndjson(payload: dict[str, Any]) -> bytes:
    """One line of newline-delimited JSON (Ollama's streams)."""
    return json.dumps(payload, separators=(",", ":")).encode() + b"\n"


def named_sse(payload: dict[str, Any]) -> bytes:
    """An SSE event named after the payload's ``type`` (Anthropic's streams)."""
    return f"event: {payload['type']}\n".encode() + sse(payload)


@dataclass(frozen=True)
class Framing:
    """How one API writes a stream: its media type, one chunk, and the stream's end."""

    media_type: str
    encode: Callable[[dict[str, Any]], bytes]
    end: bytes = b""


SSE = Framing("text/event-stream", sse, DONE)
NDJSON = Framing("application/x-ndjson", ndjson)
NAMED_SSE = Framing("text/event-stream", named_sse)


async def wait_for_disconnect(receive: Receive) -> None:
    """Return once the client has disconnected (the request body was read already)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


@asynccontextmanager
async def cancel_on_disconnect(receive: Receive, cancel: Callable[[], None]) -> AsyncIterator[None]:
    """Call ``cancel`` if the client disconnects while the block runs.

    A plain task, not a task group: exceptions from the block must reach the
    error handlers as they are, not wrapped in an exception group.
    """

    async def watch() -> None:
        await wait_for_disconnect(receive)
        cancel()

    watcher = asyncio.ensure_future(watch())
    try:
        yield
    finally:
        watcher.cancel()


async def aclose(iterator: AsyncIterator[Any]) -> None:
    close = getattr(iterator, "aclose", None)
    if close is not None:
        await close()


class EventStreamResponse(StreamingResponse):
    """A ``text/event-stream`` response that cancels its generation on disconnect.

    A watcher reads ``receive`` for ``http.disconnect`` while the body streams.
    When it comes, ``on_disconnect`` runs (cancelling the Terminus stream) and the
    body is drained without sending: the engine stops within a token or two, and
    its final ``Stats`` still reach the access log. ``on_close`` runs exactly once
    however the response ends; the request's concurrency slot is given back there,
    once the engine has really let go of its slot.
    """

    #: After a disconnect, how long the cancelled generation may take to wind down.
    drain_timeout_s = 10.0

    def __init__(
        self,
        body: AsyncIterator[bytes],
        *,
        on_disconnect: Callable[[], None],
        on_close: Callable[[], None],
        media_type: str = "text/event-stream",
    ) -> None:
        super().__init__(body, media_type=media_type, headers=SSE_HEADERS)
        self._body = body
        self._on_disconnect = on_disconnect
        self._on_close = on_close
        self._gone = False

    def _disconnected(self) -> None:
        if not self._gone:
            self._gone = True
            self._on_disconnect()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(None) as deadline:

                async def watch() -> None:
                    await wait_for_disconnect(receive)
                    self._disconnected()
                    deadline.reschedule(loop.time() + self.drain_timeout_s)

                watcher = asyncio.ensure_future(watch())
                try:
                    await self._send_body(send)
                finally:
                    watcher.cancel()
        except TimeoutError:
            pass  # the cancelled engine did not wind down in time; stop waiting for it
        finally:
            await aclose(self._body)
            self._on_close()

    async def _send_body(self, send: Send) -> None:
        start = {
            "type": "http.response.start",
            "status": self.status_code,
            "headers": self.raw_headers,
        }
        try:
            await send(start)
            async for chunk in self._body:
                if not self._gone:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            if not self._gone:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:  # the socket went away under a send (ASGI 2.4 servers)
            self._disconnected()
            async for _ in self._body:  # drain: the cancelled engine winds down
                pass
