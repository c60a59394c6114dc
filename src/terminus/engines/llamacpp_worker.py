"""The process that owns an ``xllamacpp.Server``: a thin proxy for its ``handle_*`` calls.

The host starts ``python -m terminus.engines.llamacpp_worker FD`` and talks to it
over the socket on file descriptor FD (pickled tuples, ``worker_pipe``)::

    host -> worker   ("load", [assignments])                    see llamacpp_params
                     ("call", id, method, body, streamed)       method: handle_chat_completions, ...
                     ("cancel", id)
                     ("exit",)
    worker -> host   ("ready", {load_s, address})
                     ("chunks", 0, [(id, chunk), ...])          streamed calls' chunks, in order
                     ("result", id, value)                      the handler's return value; last
                     ("error", id, exception class name, message)
                     ("load_error", message)

Each call runs in its own thread, so llama.cpp's slots batch them as in one
process. A streamed call's chunk callback returns True once the host has sent
``cancel`` for it: llama.cpp's own stop hook, within a token of the message.
Chunks that pile up while the connection is busy (of any call) leave in one
message; fields the host never reads are left out of them.

The main thread only reads the connection, also while the model loads: when the
host goes away (even killed) the connection ends and this process exits at once,
so a worker never outlives its host.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

from terminus.engines.llamacpp_params import build_params
from terminus.engines.worker_pipe import MessagePipe

METHODS = frozenset(
    {"handle_chat_completions", "handle_completions", "handle_embeddings", "handle_rerank"}
)


class _Outbox:
    """Sends to the host from many threads; streamed chunks go out in batches.

    Chunks of all calls wait in one list, and whoever holds the connection sends
    everything waiting: the slots llama.cpp decodes together produce their chunks
    together, so concurrent streams cost one message (one write, one wake-up of
    the host's reader) per step instead of one per stream.
    """

    def __init__(self, conn: MessagePipe) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self._pending: list[tuple[int, Any]] = []
        self._guard = threading.Lock()

    def send(self, message: tuple[Any, ...]) -> None:
        with self._lock:
            self._flush()  # a call's chunks always arrive before its result
            self._conn.send(message)

    def put(self, call_id: int, chunk: Any) -> None:
        with self._guard:
            self._pending.append((call_id, _slim(chunk)))
        with self._lock:
            self._flush()

    def _flush(self) -> None:
        with self._guard:
            batch, self._pending = self._pending, []
        if batch:
            self._conn.send(("chunks", 0, batch))


# Chunk fields the host never reads (the same on every chunk of a call): left out
# of the pickle, which makes a chunk about half as long.
_UNREAD = ("created", "id", "model", "system_fingerprint", "object")


def _slim(chunk: Any) -> Any:
    if isinstance(chunk, dict):
        for key in _UNREAD:
            chunk.pop(key, None)
    return chunk


class _Worker:
    def __init__(self, conn: MessagePipe) -> None:
        self.outbox = _Outbox(conn)
        self.server: Any = None
        self.running: set[int] = set()
        self.cancelled: set[int] = set()

    def load(self, assignments: list[Any]) -> None:
        started = time.perf_counter()
        try:
            import xllamacpp

            self.server = xllamacpp.Server(build_params(assignments))
        except Exception as exc:
            self.outbox.send(("load_error", f"{type(exc).__name__}: {exc}"))
            return
        # The server also answers llama.cpp's HTTP API on a loopback port (KV snapshots).
        address = getattr(self.server, "listening_address", None)
        self.outbox.send(("ready", {"load_s": time.perf_counter() - started, "address": address}))

    def call(self, call_id: int, method: str, body: Any, streamed: bool) -> None:
        try:
            if self.server is None or method not in METHODS:
                raise RuntimeError(f"cannot run {method!r}: no model or no such call")
            handler = getattr(self.server, method)
            if streamed:
                put = self.outbox.put

                def on_chunk(chunk: Any) -> bool:
                    put(call_id, chunk)
                    return call_id in self.cancelled

                value = handler(body, on_chunk)
            else:
                value = handler(body)
        except Exception as exc:
            self.outbox.send(("error", call_id, type(exc).__name__, str(exc)))
        else:
            self.outbox.send(("result", call_id, value))
        finally:
            self.running.discard(call_id)
            self.cancelled.discard(call_id)

    def serve(self, conn: MessagePipe) -> None:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                return  # the host is gone
            op = message[0]
            if op == "call":
                _, call_id, method, body, streamed = message
                self.running.add(call_id)
                threading.Thread(
                    target=self.call, args=(call_id, method, body, streamed), daemon=True
                ).start()
            elif op == "cancel" and message[1] in self.running:
                self.cancelled.add(message[1])
            elif op == "load":
                threading.Thread(target=self.load, args=(message[1],), daemon=True).start()
            elif op == "exit":
                return


def _import_engine() -> None:
    import xllamacpp  # noqa: F401  (the load finds it imported)


def main(argv: list[str]) -> None:
    conn = MessagePipe(int(argv[1]))
    # Import llama.cpp while the host is still deciding what to load (a worker may be
    # started ahead of its load); the load's own import then waits for this one.
    threading.Thread(target=_import_engine, daemon=True).start()
    _Worker(conn).serve(conn)
    # Leave without waiting on llama.cpp's threads or running its destructors:
    # the host has stopped listening and the OS frees the model.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv)
