"""Graceful shutdown for ``terminus serve``: drain, then stop.

On SIGTERM or Ctrl-C the server keeps listening while it drains: new requests get
503 (``server_shutting_down``), ``/ready`` turns 503, and requests in flight get a
grace period to finish. Streams still running then end with an error event and
``[DONE]``; non-streamed requests answer 503. Only then does uvicorn close the
sockets, so no task is cancelled mid-response (which is what logs a traceback).
A second signal skips the rest of the drain; a third exits at once.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from types import FrameType

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from terminus.server.shapes import shaped_error
from terminus.server.state import ServerState, shutting_down


class DrainMiddleware:
    """While the server drains, new requests get 503 and ``Connection: close``.

    The probes (``open_paths``) still answer, so an orchestrator sees ``/ready`` turn 503.
    """

    def __init__(self, app: ASGIApp, state: ServerState, open_paths: frozenset[str]) -> None:
        self.app = app
        self.state = state
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.state.draining and scope["path"] not in self.open_paths:
            await shaped_error(scope, shutting_down())(scope, receive, send)
            return
        await self.app(scope, receive, send)


class DrainingServer(uvicorn.Server):
    """A uvicorn server whose first exit signal drains ``state`` (``settings.grace_s``)."""

    def __init__(self, config: uvicorn.Config, state: ServerState) -> None:
        super().__init__(config)
        self.state = state
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain: asyncio.Future[None] | None = None
        self._signals = 0

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._signals += 1
        if self._loop is None or self._signals > 1:
            # the drain is under way or cannot run: plain uvicorn behaviour, then force
            self.force_exit = self.should_exit and sig in (signal.SIGINT, signal.SIGTERM)
            self.should_exit = True
            return
        self._loop.call_soon_threadsafe(self._start_drain)

    def _start_drain(self) -> None:
        self._drain = asyncio.ensure_future(self._drain_then_exit())

    async def _drain_then_exit(self) -> None:
        try:
            await self.state.drain(self.state.settings.grace_s)
        finally:
            self.should_exit = True
