"""A provider: serves delegated requests for the models it shares, to allowed keys only.

Each request is one QUIC stream: a header frame (op, signed token, body), then
event frames back and an ``end`` frame. The consumer may send a ``cancel`` frame;
a consumer that vanishes (stream reset, connection lost) cancels its request too,
so the engine stops generating and the concurrency slot is freed.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from terminus.errors import (
    InvalidParameterError,
    ModelNotFoundError,
    PeerBusyError,
    PeerRefusedError,
    PeerUnavailableError,
    TerminusError,
)
from terminus.models.catalog import Catalog
from terminus.p2p.identity import Identity
from terminus.p2p.node import (
    EventLoopThread,
    FrameReader,
    NodeRef,
    bind_endpoint,
    endpoint_addresses,
    remote_node_id,
    write_frame,
)
from terminus.p2p.ops import OPS, Op, dump_value, parse_request, run_op
from terminus.p2p.status import ProviderStatus, machine_load
from terminus.p2p.tokens import NonceCache, NonceStore, Token, check_token
from terminus.p2p.tool_ops import TOOL_OPS, ToolHost
from terminus.p2p.wire import error_message
from terminus.types import CancelToken

log = logging.getLogger(__name__)

#: A frame at least this often while a request runs, so a consumer notices a dead
#: provider in seconds (iroh exposes no QUIC idle-timeout setting to tune).
HEARTBEAT_S = 1.0


@dataclass(frozen=True)
class ProviderPolicy:
    """Who may use this provider and how much. ``allow=None`` admits any key not denied."""

    allow: frozenset[str] | None = frozenset()
    deny: frozenset[str] = frozenset()
    max_concurrent: int = 4
    max_tokens: int | None = None

    def admits(self, node_id: str) -> bool:
        if node_id in self.deny:
            return False
        return self.allow is None or node_id in self.allow


@dataclass
class ProviderStats:
    served: int = 0
    refused: int = 0
    cancelled: int = 0
    active: int = 0
    consumers: set[str] = field(default_factory=set)


class Provider:
    def __init__(
        self,
        transport: Any,
        identity: Identity,
        catalog: Catalog,
        models: Iterable[str],
        policy: ProviderPolicy,
        *,
        listen: str = "0.0.0.0:0",
        advertise: tuple[str, ...] = (),
        relay: bool = False,
        nonces: NonceStore | None = None,
        tools: ToolHost | None = None,
    ) -> None:
        """``nonces`` remembers accepted tokens; pass a persistent store (as ``terminus
        provide`` does) so that a restart does not accept a still-valid token twice.
        ``tools`` serves peer tools; without it, tool requests are refused."""
        self.transport = transport
        self.identity = identity
        self.catalog = catalog
        self.models = frozenset(catalog.get(m).id for m in models)
        self.policy = policy
        self.tools = tools
        self.stats = ProviderStats()
        self._nonces: NonceStore = nonces if nonces is not None else NonceCache()
        self._slots = threading.BoundedSemaphore(max(1, policy.max_concurrent))
        self._listen = listen
        self._advertise = advertise
        self._relay = relay
        self._loop: EventLoopThread | None = None
        self._endpoint: Any = None
        self._accepting: Any = None

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> NodeRef:
        self._loop = EventLoopThread("terminus-provider")
        deadline = time.monotonic() + 5
        while True:
            try:
                self._endpoint = self._loop.run(
                    bind_endpoint(self.identity, self._listen, self._relay)
                )
                break
            except Exception as exc:
                # A restart on a fixed port may race the old socket's release.
                if time.monotonic() > deadline:
                    self._loop.stop()
                    raise PeerUnavailableError(f"cannot listen on {self._listen}: {exc!r}") from exc
                time.sleep(0.2)
        self._accepting = self._loop.submit(self._accept_loop())
        return self.node_ref

    @property
    def node_ref(self) -> NodeRef:
        return NodeRef(self.identity.node_id, endpoint_addresses(self._endpoint, self._advertise))

    def close(self) -> None:
        if self._loop is None:
            return
        with contextlib.suppress(Exception):
            self._loop.run(self._endpoint.close(), timeout=5)
        self._loop.stop()
        self._loop = None
        # iroh releases the UDP sockets only when the last handle goes away.
        self._endpoint = self._accepting = None
        gc.collect()

    def status(self) -> ProviderStatus:
        load, cores = machine_load()
        return ProviderStatus(
            node_id=self.identity.node_id,
            models=sorted(self.models),
            active=self.stats.active,
            max_concurrent=self.policy.max_concurrent,
            served=self.stats.served,
            load_average=load,
            cores=cores,
        )

    # -- connections ---------------------------------------------------------------

    async def _accept_loop(self) -> None:
        while True:
            incoming = await self._endpoint.accept_next()
            if incoming is None:
                return
            asyncio.create_task(self._connection(incoming))

    async def _connection(self, incoming: Any) -> None:
        try:
            connection = await (await incoming.accept()).connect()
        except Exception as exc:
            log.info("handshake failed: %s", exc)
            return
        peer = remote_node_id(connection)
        if not self.policy.admits(peer):
            self.stats.refused += 1
            log.warning("refused consumer %s (not allowed)", peer)
            await self._refuse(connection, peer)
            return
        self.stats.consumers.add(peer)
        while True:
            try:
                stream = await connection.accept_bi()
            except Exception:
                return  # the consumer closed or vanished; its streams cancel themselves
            asyncio.create_task(self._stream(peer, stream))

    async def _refuse(self, connection: Any, peer: str) -> None:
        """Tell the refused key why on its first stream, then hang up."""
        error = PeerRefusedError(
            f"this provider does not serve key {peer[:16]}…",
            hint="ask its operator to add your key (terminus node --show) to --allow",
        )
        with contextlib.suppress(Exception):
            stream = await asyncio.wait_for(connection.accept_bi(), 5)
            await write_frame(stream.send(), {"error": error_message(error)})
            await stream.send().finish()
            await asyncio.wait_for(connection.closed(), 2)
        with contextlib.suppress(Exception):
            connection.close(1, b"not allowed")

    # -- requests ------------------------------------------------------------------

    async def _stream(self, peer: str, stream: Any) -> None:
        send, recv = stream.send(), FrameReader(stream.recv())
        cancel = CancelToken()
        done = asyncio.Event()
        holding = False
        try:
            header = await recv.next()
            if header is None:
                return
            op, request = self._admit(peer, header)
            if op.name == "status":  # answered even when every slot is busy
                await write_frame(send, {"result": dump_value(op, self.status(), result=True)})
                await write_frame(send, {"end": True})
                await send.finish()
                return
            if not self._slots.acquire(blocking=False):
                raise PeerBusyError(
                    f"provider is serving {self.policy.max_concurrent} requests already",
                    hint="retry shortly",
                )
            holding = True
            self.stats.active += 1
            watcher = asyncio.create_task(self._watch(recv, cancel, done))
            try:
                await self._run(op, request, cancel, send, peer)
            finally:
                done.set()
                watcher.cancel()
            self.stats.served += 1
            await write_frame(send, {"end": True})
            await send.finish()
        except TerminusError as exc:
            if isinstance(exc, PeerRefusedError):
                self.stats.refused += 1
                log.warning("refused a request from %s: %s", peer[:16], exc)
            with contextlib.suppress(Exception):
                await write_frame(send, {"error": error_message(exc)})
                await send.finish()
        except _ConsumerGone:
            cancel.cancel("consumer vanished")
            self.stats.cancelled += 1
            log.info("consumer %s vanished; its request was cancelled", peer[:16])
        finally:
            if holding:
                self.stats.active -= 1
                self._slots.release()

    def _admit(self, peer: str, header: dict[str, Any]) -> tuple[Op, Any]:
        op = OPS.get(str(header.get("op")))
        body = header.get("body")
        if op is None or not isinstance(body, str):
            raise InvalidParameterError(f"unknown operation {header.get('op')!r}")
        raw = body.encode()
        check_token(
            Token.from_wire(header.get("token")),
            peer=peer,
            provider=self.identity.node_id,
            op=op.name,
            body=raw,
            nonces=self._nonces,
        )
        try:
            request = parse_request(op, raw)
        except ValueError as exc:
            raise InvalidParameterError(f"invalid {op.name} request: {exc}") from exc
        if op.name in TOOL_OPS and self.tools is None:
            raise PeerRefusedError("this provider offers no tools")
        model = getattr(request, "model", None)
        if model is not None and self.catalog.get(model).id not in self.models:
            raise ModelNotFoundError(f"this provider does not share {model!r}")
        return op, self._limit(request)

    def _limit(self, request: Any) -> Any:
        limit = self.policy.max_tokens
        params = getattr(request, "params", None)
        if limit is None or params is None or not hasattr(params, "max_tokens"):
            return request
        if params.max_tokens is not None and params.max_tokens > limit:
            raise InvalidParameterError(
                f"max_tokens {params.max_tokens} is over this provider's {limit}"
            )
        if params.max_tokens is None:
            request = request.model_copy(
                update={"params": params.model_copy(update={"max_tokens": limit})}
            )
        return request

    async def _run(
        self, op: Op, request: Any, cancel: CancelToken, send: Any, peer: str = ""
    ) -> None:
        if not op.streams:
            if op.name in TOOL_OPS:
                method = getattr(self.tools, op.name)
                work = asyncio.ensure_future(asyncio.to_thread(method, request, peer))
            else:
                work = asyncio.ensure_future(
                    asyncio.to_thread(run_op, self.transport, op, request, cancel)
                )
            while not work.done():
                await asyncio.wait({work}, timeout=HEARTBEAT_S)
                if not work.done():
                    await self._send(send, {"ping": True})
            await self._send(send, {"result": dump_value(op, work.result(), result=True)})
            return
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

        def post(item: tuple[str, Any]) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the provider shut down meanwhile: stop generating
                cancel.cancel("provider closed")

        def pump() -> None:
            try:
                for event in run_op(self.transport, op, request, cancel):
                    post(("event", event))
                post(("end", None))
            except BaseException as exc:  # handed to the loop, raised there
                post(("error", exc))

        threading.Thread(target=pump, name="terminus-provide", daemon=True).start()
        try:
            while True:
                try:
                    kind, item = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
                except TimeoutError:
                    await self._send(send, {"ping": True})
                    continue
                if kind == "end":
                    return
                if kind == "error":
                    raise item
                await self._send(send, {"event": dump_value(op, item, result=True)})
        except BaseException:
            cancel.cancel("consumer vanished")
            raise

    @staticmethod
    async def _send(send: Any, message: dict[str, Any]) -> None:
        try:
            await write_frame(send, message)
        except Exception as exc:
            raise _ConsumerGone from exc

    @staticmethod
    async def _watch(recv: FrameReader, cancel: CancelToken, done: asyncio.Event) -> None:
        """A cancel frame, or the consumer's side ending early, cancels the request."""
        frame = await recv.next()
        if not done.is_set():
            cancel.cancel("cancelled by the consumer" if frame else "consumer vanished")


class _ConsumerGone(Exception):
    """Writing to the consumer failed: it closed the stream or vanished."""
