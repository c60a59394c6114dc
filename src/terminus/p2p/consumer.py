"""A consumer: sends signed requests to one provider and yields its events as they arrive.

The connection is made on first use and made again when it dropped (a provider
restart, a network change). A request whose answer never started (the connection was
found dead only once the request was sent, as after a provider was killed and started
again) is sent once more on a fresh connection, with a fresh token: nothing reached the
caller, so nothing can be duplicated. A stream that breaks after its first event raises
``PeerUnavailableError`` instead of silently starting over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from terminus.errors import PeerUnavailableError
from terminus.p2p.identity import Identity
from terminus.p2p.node import (
    EventLoopThread,
    FrameReader,
    NodeRef,
    bind_endpoint,
    dial,
    write_frame,
)
from terminus.p2p.ops import OPS, Op, load_value, request_body
from terminus.p2p.tokens import DEFAULT_TTL_S, issue_token
from terminus.p2p.wire import error_from_message
from terminus.types import CancelToken

log = logging.getLogger(__name__)

POLL_S = 0.05
#: No frame (not even the provider's 1 s heartbeat) for this long: the provider is gone.
SILENCE_S = 5.0


class PeerClient:
    def __init__(
        self,
        ref: NodeRef,
        identity: Identity,
        *,
        connect_timeout: float = 5.0,
        retries: int = 2,
        token_ttl: float = DEFAULT_TTL_S,
        relay: bool = False,
    ) -> None:
        self.ref = ref
        self.identity = identity
        self.connect_timeout = connect_timeout
        self.retries = retries
        self.token_ttl = token_ttl
        self._relay = relay
        self._loop: EventLoopThread | None = None
        self._endpoint: Any = None
        self._connection: Any = None
        self.reconnects = 0
        self.resent = 0
        # Several threads may share one client (a pool, a server): one dial at a time.
        self._dialing = threading.Lock()

    # -- public --------------------------------------------------------------------

    def stream(self, op_name: str, request: Any, cancel: CancelToken) -> Iterator[Any]:
        """The provider's events; reaching it is checked now, so a caller can fall back."""
        op = OPS[op_name]
        send, recv = self._open(op, request)
        return self._events(op, request, send, recv, cancel)

    def call(self, op_name: str, request: Any) -> Any:
        op = OPS[op_name]
        send, recv = self._open(op, request)
        frame = self._read(recv, None)
        self._finish(send)
        if frame is None:
            send, recv = self._resend(op, request)
            frame = self._read(recv, None)
            self._finish(send)
        if frame is None:
            self._connection = None
            raise PeerUnavailableError(f"provider {self.ref.node_id[:12]}… closed the stream")
        if "error" in frame:
            raise error_from_message(frame["error"], self.ref.node_id)
        return load_value(op, frame.get("result"), result=True)

    def close(self) -> None:
        if self._loop is None:
            return
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close(0, b"bye")
        with contextlib.suppress(Exception):
            self._run(self._endpoint.close(), 5)
        self._loop.stop()
        self._loop = None
        self._connection = None

    # -- internals -----------------------------------------------------------------

    def _run(self, coro: Any, timeout: float | None) -> Any:
        if self._loop is None:  # closed meanwhile
            coro.close()
            raise PeerUnavailableError("the peer client is closed")
        return self._loop.run(coro, timeout)

    def _ensure_endpoint(self) -> None:
        with self._dialing:
            if self._loop is None:
                self._loop = EventLoopThread("terminus-consumer")
                self._endpoint = self._run(
                    bind_endpoint(self.identity, "0.0.0.0:0", self._relay), 10
                )

    def _open(self, op: Op, request: Any) -> tuple[Any, Any]:
        """A fresh stream carrying the signed request; reconnects when the link dropped."""
        self._ensure_endpoint()
        body = request_body(op, request)
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            try:
                connection = self._connect()
                token = issue_token(self.identity, self.ref.node_id, op.name, body, self.token_ttl)
                header = {"op": op.name, "token": token.to_wire(), "body": body.decode()}
                return self._run(self._start(connection, header), self.connect_timeout)
            except (Exception, FutureTimeout) as exc:
                last = exc
                self._connection = None
                if attempt < self.retries:
                    time.sleep(min(0.2 * 2**attempt, 2.0))
        raise PeerUnavailableError(
            f"cannot reach provider {self.ref.node_id[:12]}… at "
            f"{', '.join(self.ref.addresses) or 'no address'}: {_describe(last)}",
            hint="is `terminus provide` running there?",
        )

    def _connect(self) -> Any:
        with self._dialing:
            connection = self._connection
            if connection is None or connection.close_reason() is not None:
                if connection is not None:
                    self.reconnects += 1
                connection = self._run(dial(self._endpoint, self.ref), self.connect_timeout)
                self._connection = connection
            return connection

    @staticmethod
    async def _start(connection: Any, header: dict[str, Any]) -> tuple[Any, _Inbox]:
        """Open a stream, send the header, and start reading the answer at once."""
        stream = await connection.open_bi()
        send = stream.send()
        await write_frame(send, header)
        return send, _Inbox.start(FrameReader(stream.recv()))

    def _read(self, inbox: _Inbox, cancel: CancelToken | None, send: Any = None) -> Any:
        """The next frame other than a heartbeat, or None when the provider went silent.

        Frames are read on the loop as they arrive and handed over through a queue, so
        this thread wakes once per frame. While waiting, a cancel is forwarded once.
        """
        forwarded = False
        last_heard = time.monotonic()
        while True:
            try:
                frame = inbox.frames.get(timeout=POLL_S)
            except queue.Empty:
                if time.monotonic() - last_heard > SILENCE_S:
                    inbox.stop()
                    return None
                if cancel is not None and cancel.cancelled and not forwarded and send is not None:
                    forwarded = True
                    with contextlib.suppress(Exception):
                        self._run(write_frame(send, {"cancel": True}), 2)
                continue
            if frame is None or not frame.get("ping"):
                return frame
            last_heard = time.monotonic()

    def _resend(self, op: Op, request: Any) -> tuple[Any, Any]:
        """Drop a connection that lost a request before its answer began; send it again."""
        log.info("provider %s… did not answer; reconnecting", self.ref.node_id[:12])
        self._drop_connection()
        self.reconnects += 1
        self.resent += 1
        return self._open(op, request)

    def _drop_connection(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close(0, b"lost")
        self._connection = None

    def _finish(self, send: Any) -> None:
        with contextlib.suppress(Exception):
            self._run(send.finish(), 2)

    def _events(
        self, op: Op, request: Any, send: Any, recv: Any, cancel: CancelToken
    ) -> Iterator[Any]:
        started = False
        resent = False
        try:
            while True:
                frame = self._read(recv, cancel, send)
                if frame is None and not started and not resent and not cancel.cancelled:
                    resent = True
                    self._finish(send)
                    send, recv = self._resend(op, request)
                    continue
                if frame is None:
                    self._drop_connection()
                    raise PeerUnavailableError(
                        f"the connection to provider {self.ref.node_id[:12]}… was lost "
                        + ("mid-stream" if started else "before its answer began"),
                        hint="the provider stopped or the network dropped; try again",
                    )
                if "error" in frame:
                    raise error_from_message(frame["error"], self.ref.node_id)
                if frame.get("end"):
                    return
                started = True
                yield load_value(op, frame.get("event"), result=True)
        finally:
            # Leaving early (break, close) tells the provider to stop generating.
            self._finish(send)


class _Inbox:
    """The frames of one answer, read by a task on the event loop into a thread-safe queue."""

    def __init__(self, task: asyncio.Task[None], frames: queue.SimpleQueue[Any]) -> None:
        self._task = task
        self.frames = frames

    @classmethod
    def start(cls, reader: FrameReader) -> _Inbox:
        frames: queue.SimpleQueue[Any] = queue.SimpleQueue()

        async def pump() -> None:
            while True:
                frame = await reader.next()
                frames.put(frame)
                if frame is None:
                    return

        return cls(asyncio.get_running_loop().create_task(pump()), frames)

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            self._task.get_loop().call_soon_threadsafe(self._task.cancel)


def _describe(error: BaseException | None) -> str:
    if error is None:
        return "unknown error"
    if isinstance(error, TimeoutError | FutureTimeout):
        return "no answer (timed out)"
    return str(error) or type(error).__name__
