"""iroh endpoints (QUIC, TLS 1.3 with both sides' Ed25519 keys) driven from sync code.

Measured choice (docs/p2p.md): iroh authenticates both ends by the same Ed25519
key as the node identity and connects in ~10 ms over loopback with relays off.
Relays are off unless asked for, because ``Endpoint.online()`` waits forever
when none is reachable; peers dial each other by direct address from a reference.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlencode

from terminus.errors import EngineUnavailableError, InvalidParameterError, PeerUnavailableError
from terminus.p2p.identity import Identity, is_node_id
from terminus.p2p.reference import parse_address
from terminus.p2p.wire import decode_body, encode_frame, frame_length

ALPN = b"terminus/infer/1"
NODE_PREFIX = "terminus:node/"
T = TypeVar("T")


def iroh() -> Any:
    try:
        import iroh as module
    except ImportError as exc:
        raise EngineUnavailableError(
            "delegated inference needs iroh", hint="pip install 'terminus-sdk[p2p]'"
        ) from exc
    return module


@dataclass(frozen=True)
class NodeRef:
    """How to reach a node: its id (Ed25519 public key, hex) and direct addresses."""

    node_id: str
    addresses: tuple[str, ...] = ()

    def format(self) -> str:
        query = urlencode([("addr", a) for a in self.addresses], safe=":[]")
        return NODE_PREFIX + self.node_id + (f"?{query}" if query else "")


def parse_node_ref(text: str) -> NodeRef:
    text = text.strip()
    body = text[len(NODE_PREFIX) :] if text.startswith(NODE_PREFIX) else text
    node_id, _, query = body.partition("?")
    node_id = node_id.lower()
    if not is_node_id(node_id):
        raise InvalidParameterError(
            f"not a node reference: {text[:40]!r}",
            hint="use the terminus:node/… line `terminus node` or `terminus provide` prints",
        )
    addresses = tuple(parse_qs(query).get("addr", []))
    for address in addresses:
        parse_address(address)
    return NodeRef(node_id, addresses)


class EventLoopThread:
    """One asyncio loop on a daemon thread; sync code submits coroutines to it."""

    def __init__(self, name: str = "terminus-p2p") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return self.submit(coro).result(timeout)

    def stop(self) -> None:
        """Cancel what still runs on the loop, let it unwind, then close the loop."""
        if self.loop.is_closed():
            return

        async def drain() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=2)

        with contextlib.suppress(Exception):
            self.run(drain(), timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self.loop.close()


async def bind_endpoint(
    identity: Identity, listen: str = "0.0.0.0:0", relay: bool = False, alpn: bytes = ALPN
) -> Any:
    module = iroh()
    builder = module.EndpointBuilder()
    if relay:
        builder.apply_n0()  # public relays and discovery, when the internet is there
    else:
        builder.apply_minimal()  # crypto only: nothing outside this network is contacted
        builder.relay_mode(module.RelayMode.disabled())
    builder.secret_key(identity.seed)
    builder.alpns([alpn])
    builder.bind_addr(listen)
    return await builder.bind()


def endpoint_addresses(endpoint: Any, advertise: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Addresses a peer can dial: IPv4 sockets (0.0.0.0 becomes 127.0.0.1 plus ``advertise``)."""
    found: list[str] = []
    for socket_addr in endpoint.bound_sockets():
        host, port = parse_address(socket_addr)
        if ":" in host:
            continue
        if host == "0.0.0.0":
            found += [f"{h}:{port}" for h in (*advertise, "127.0.0.1")]
        else:
            found.append(f"{host}:{port}")
    return tuple(dict.fromkeys(found))


async def dial(endpoint: Any, ref: NodeRef, alpn: bytes = ALPN) -> Any:
    module = iroh()
    if not ref.addresses:
        raise PeerUnavailableError(f"no address known for node {ref.node_id[:12]}…")
    addr = module.EndpointAddr(
        module.EndpointId.from_bytes(bytes.fromhex(ref.node_id)), None, list(ref.addresses)
    )
    return await endpoint.connect(addr, alpn)


def remote_node_id(connection: Any) -> str:
    return bytes(connection.remote_id().to_bytes()).hex()


async def write_frame(send: Any, message: dict[str, Any]) -> None:
    await send.write_all(encode_frame(message))


class FrameReader:
    """Frames from one stream, read in chunks: a small frame (header and body) usually
    arrives in one read, one wake-up of the event loop instead of two per frame."""

    def __init__(self, recv: Any) -> None:
        self.recv = recv
        self._buffer = bytearray()

    async def next(self) -> dict[str, Any] | None:
        """The next frame, or None when the other side finished or the stream broke."""
        try:
            await self._fill(4)
            length = frame_length(bytes(self._buffer[:4]))
            await self._fill(4 + length)
        except Exception:  # iroh raises one error type for reset and lost connections
            return None
        body = bytes(self._buffer[4 : 4 + length])
        del self._buffer[: 4 + length]
        return decode_body(body)

    async def _fill(self, size: int) -> None:
        while len(self._buffer) < size:
            chunk = await self.recv.read(max(1 << 16, size - len(self._buffer)))
            if not chunk:
                raise EOFError
            self._buffer += chunk


async def read_frame(recv: Any) -> dict[str, Any] | None:
    """The next frame, or None when the other side finished or the stream broke."""
    try:
        header = await recv.read_exact(4)
        body = await recv.read_exact(frame_length(bytes(header)))
    except Exception:  # iroh raises one error type for EOF, reset and lost connections
        return None
    return decode_body(bytes(body))
