"""Pickled messages over one end of a socket pair: the llama.cpp worker's channel to its host.

It does what ``multiprocessing.connection.Connection`` did here (``send``, ``recv``,
``poll``, ``close``; ``EOFError`` once the other side is gone) with ``os`` calls on the
file descriptor, because the worker's start-up is on the cold-start path: importing
``multiprocessing.connection`` (with ``tempfile``, ``subprocess``, ``socket``…) took 35 ms of
the worker's 53 ms of imports before llama.cpp, on this machine. A message is an 8-byte
big-endian length, then the pickle. Not thread-safe: callers hold a lock to send.
"""

from __future__ import annotations

import os
import pickle
import select
from typing import Any

_HEADER_BYTES = 8
_SMALL = 1 << 16  # below this the header and the body leave in one write


class MessagePipe:
    """One end of a connected socket pair (or any stream file descriptor), owned."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def fileno(self) -> int:
        return self._fd

    def send(self, message: object) -> None:
        body = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
        header = len(body).to_bytes(_HEADER_BYTES, "big")
        if len(body) < _SMALL:
            self._write_all(header + body)
        else:  # no copy of a large body just to prepend the header
            self._write_all(header)
            self._write_all(body)

    def recv(self) -> Any:
        size = int.from_bytes(self._read_exact(_HEADER_BYTES), "big")
        return pickle.loads(self._read_exact(size))

    def poll(self, timeout: float = 0.0) -> bool:
        """Whether something (or the end) can be read within ``timeout`` seconds."""
        if self._fd < 0:
            raise OSError("the pipe is closed")
        readable, _, _ = select.select([self._fd], [], [], timeout)
        return bool(readable)

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def _read_exact(self, size: int) -> bytearray:
        buffer = bytearray(size)
        view = memoryview(buffer)
        got = 0
        while got < size:
            count = os.readv(self._fd, [view[got:]])
            if count == 0:
                raise EOFError("the other side closed the pipe")
            got += count
        return buffer
