"""llama.cpp's RPC byte stream carried inside the authenticated, encrypted peer channel.

llama.cpp's ``rpc-server`` has no authentication and must never listen beyond loopback. A
worker (``terminus provide --rpc``) runs it on 127.0.0.1 and accepts iroh connections (QUIC,
TLS 1.3 with both Ed25519 keys) on a separate ALPN; a key that is not allowed is told so and
the connection closed before a single byte reaches the RPC server. On the host, an
``RpcTunnel`` listens on 127.0.0.1 for each worker and carries every TCP connection there over
one iroh stream, so llama.cpp dials ``127.0.0.1:PORT`` as if the worker were local.

Each stream starts with one status byte from the worker: ``1`` admitted (raw RPC bytes follow
both ways), ``0`` refused (a reason follows). The host checks every worker that way before
llama.cpp starts, so a refusal is a ``PeerRefusedError`` rather than a crash inside llama.cpp.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from terminus.errors import PeerRefusedError, PeerUnavailableError
from terminus.p2p.identity import Identity
from terminus.p2p.node import (
    EventLoopThread,
    NodeRef,
    bind_endpoint,
    dial,
    endpoint_addresses,
    remote_node_id,
)

log = logging.getLogger(__name__)

RPC_ALPN = b"terminus/llama-rpc/1"
ADMITTED, REFUSED = b"\x01", b"\x00"
CHUNK = 1 << 16


@dataclass
class TunnelStats:
    connections: int = 0
    refused: int = 0
    #: Bytes handed to the local rpc-server (a refused key never adds to this).
    bytes_to_rpc: int = 0


async def _iroh_to_tcp(recv: Any, writer: asyncio.StreamWriter, stats: TunnelStats | None) -> None:
    with contextlib.suppress(Exception):
        while chunk := await recv.read(CHUNK):
            writer.write(chunk)
            if stats is not None:
                stats.bytes_to_rpc += len(chunk)
            await writer.drain()
    with contextlib.suppress(Exception):
        writer.close()


async def _tcp_to_iroh(reader: asyncio.StreamReader, send: Any) -> None:
    with contextlib.suppress(Exception):
        while chunk := await reader.read(CHUNK):
            await send.write_all(chunk)
    with contextlib.suppress(Exception):
        await send.finish()


async def _pipe(recv: Any, send: Any, reader: Any, writer: Any, stats: Any = None) -> None:
    """Both directions until either side ends; then both are closed."""
    tasks = [
        asyncio.ensure_future(_iroh_to_tcp(recv, writer, stats)),
        asyncio.ensure_future(_tcp_to_iroh(reader, send)),
    ]
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in tasks:
        task.cancel()
    with contextlib.suppress(Exception):
        writer.close()


def _die_with_parent() -> None:
    """Linux: the rpc-server is killed when the worker process dies, however it dies."""
    with contextlib.suppress(Exception):
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class RpcWorker:
    """``ggml-rpc-server`` on 127.0.0.1, reachable only through the peer channel by ``allow``."""

    def __init__(
        self,
        identity: Identity,
        rpc_server: Path,
        allow: frozenset[str] | None,
        *,
        listen: str = "0.0.0.0:0",
        threads: int = 1,
        cache_dir: Path | None = None,
    ) -> None:
        self.identity = identity
        self.allow = allow
        self.stats = TunnelStats()
        self._listen = listen
        self._rpc_server = rpc_server
        self._threads = threads
        self._cache_dir = cache_dir
        self._proc: subprocess.Popen[bytes] | None = None
        self._rpc_port = 0
        self._loop: EventLoopThread | None = None
        self._endpoint: Any = None

    def start(self) -> NodeRef:
        from terminus.p2p.rpc_binaries import free_loopback_port

        self._rpc_port = free_loopback_port()
        args = [str(self._rpc_server), "-H", "127.0.0.1", "-p", str(self._rpc_port)]
        args += ["-t", str(self._threads)]
        env = None
        if self._cache_dir is not None:  # big tensors kept by hash: a reload resends none
            args += ["-c"]
            env = {**os.environ, "LLAMA_CACHE": str(self._cache_dir)}
        self._proc = subprocess.Popen(
            args,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self._loop = EventLoopThread("terminus-rpc-worker")
        self._endpoint = self._loop.run(
            bind_endpoint(self.identity, self._listen, alpn=RPC_ALPN), 10
        )
        self._loop.submit(self._accept_loop())
        return NodeRef(self.identity.node_id, endpoint_addresses(self._endpoint))

    def close(self) -> None:
        if self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.run(self._endpoint.close(), 5)
            self._loop.stop()
            self._loop = None
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=10)

    def admits(self, node_id: str) -> bool:
        return self.allow is None or node_id in self.allow

    async def _accept_loop(self) -> None:
        while (incoming := await self._endpoint.accept_next()) is not None:
            asyncio.create_task(self._connection(incoming))

    async def _connection(self, incoming: Any) -> None:
        try:
            connection = await (await incoming.accept()).connect()
        except Exception as exc:
            log.info("rpc handshake failed: %s", exc)
            return
        peer = remote_node_id(connection)
        admitted = self.admits(peer)
        if not admitted:
            self.stats.refused += 1
            log.warning("refused RPC peer %s (not allowed)", peer[:16])
        while True:
            try:
                stream = await connection.accept_bi()
            except Exception:
                return
            if not admitted:
                with contextlib.suppress(Exception):
                    await stream.send().write_all(REFUSED + b"key not allowed on this worker")
                    await stream.send().finish()
                    await asyncio.sleep(0.5)
                with contextlib.suppress(Exception):
                    connection.close(1, b"not allowed")
                return
            asyncio.create_task(self._serve(stream))

    async def _serve(self, stream: Any) -> None:
        send, recv = stream.send(), stream.recv()
        try:
            if bytes(await recv.read_exact(1)) != b"?":
                return
            reader, writer = await asyncio.open_connection("127.0.0.1", self._rpc_port)
        except Exception as exc:
            log.warning("cannot reach the local rpc-server: %s", exc)
            with contextlib.suppress(Exception):
                await send.write_all(REFUSED + b"rpc-server is not running")
                await send.finish()
            return
        self.stats.connections += 1
        await send.write_all(ADMITTED)
        await _pipe(recv, send, reader, writer, self.stats)


class RpcTunnel:
    """127.0.0.1 ports on the host, one per worker, that lead to the workers' rpc-servers."""

    def __init__(self, identity: Identity, workers: list[NodeRef], connect_timeout: float = 5.0):
        self.identity = identity
        self.workers = workers
        self.endpoints: list[str] = []
        self._timeout = connect_timeout
        self._loop: EventLoopThread | None = None
        self._endpoint: Any = None
        self._servers: list[Any] = []
        self._connections: dict[str, Any] = {}

    def start(self) -> list[str]:
        """Check every worker admits this key, then listen; returns ``host:port`` per worker."""
        self._loop = EventLoopThread("terminus-rpc-tunnel")
        try:
            self._endpoint = self._loop.run(
                bind_endpoint(self.identity, "0.0.0.0:0", alpn=RPC_ALPN), 10
            )
            for worker in self.workers:
                self._loop.run(self._check(worker), self._timeout * 2)
                server = self._loop.run(self._listen(worker), 10)
                self._servers.append(server)
                port = server.sockets[0].getsockname()[1]
                self.endpoints.append(f"127.0.0.1:{port}")
        except BaseException:
            self.close()
            raise
        return self.endpoints

    def close(self) -> None:
        if self._loop is None:
            return
        for server in self._servers:
            self._loop.loop.call_soon_threadsafe(server.close)
        with contextlib.suppress(Exception):
            self._loop.run(self._endpoint.close(), 5)
        self._loop.stop()
        self._loop = None

    async def _connection_to(self, worker: NodeRef) -> Any:
        connection = self._connections.get(worker.node_id)
        if connection is None or connection.close_reason() is not None:
            try:
                connection = await asyncio.wait_for(
                    dial(self._endpoint, worker, RPC_ALPN), self._timeout
                )
            except Exception as exc:
                raise PeerUnavailableError(
                    f"cannot reach RPC worker {worker.node_id[:12]}…: {exc or 'timed out'}",
                    hint="is `terminus provide --rpc` running there?",
                ) from exc
            self._connections[worker.node_id] = connection
        return connection

    async def _open(self, worker: NodeRef) -> tuple[Any, Any]:
        """A stream the worker admitted (its status byte read), or a typed error."""
        connection = await self._connection_to(worker)
        stream = await connection.open_bi()
        send, recv = stream.send(), stream.recv()
        await send.write_all(b"?")
        try:
            status = bytes(await asyncio.wait_for(recv.read(CHUNK), self._timeout))
        except Exception as exc:
            raise PeerUnavailableError(
                f"RPC worker {worker.node_id[:12]}… did not answer", hint="is it running?"
            ) from exc
        if status[:1] == REFUSED or not status:
            self._connections.pop(worker.node_id, None)
            reason = status[1:].decode(errors="replace") or "the connection was closed"
            raise PeerRefusedError(
                f"RPC worker {worker.node_id[:12]}… refused this node: {reason}",
                hint="ask its operator to add your key (terminus node --show) to --allow",
            )
        return send, (recv, status[1:])

    async def _check(self, worker: NodeRef) -> None:
        send, _ = await self._open(worker)
        with contextlib.suppress(Exception):
            await send.finish()

    async def _listen(self, worker: NodeRef) -> Any:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                send, (recv, early) = await self._open(worker)
            except Exception as exc:
                log.warning("%s", exc)
                writer.close()
                return
            if early:
                writer.write(early)
            await _pipe(recv, send, reader, writer)

        return await asyncio.start_server(handle, "127.0.0.1", 0)
