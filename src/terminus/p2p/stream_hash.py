"""The cache's whole-file sha256 of a torrent download, computed while it downloads.

libtorrent checks every block against the v2 Merkle tree; the cache also needs the flat
sha256 its cards pin, and reading the finished file again for it cost about a third of
the transfer. Here the session downloads in order and one thread hashes each file front
to back while the rest arrive, reading each verified piece from the file (the page cache)
once libtorrent has written it: verified blocks wait in libtorrent's write queue (bounded
by ``max_queued_disk_bytes``) before they reach the file, so the reads stay that far
behind the verified edge, and the tail is read after the final flush.

The result is only a candidate: ``fetch`` keeps it when it equals the sha256 the reference
pins and otherwise lets the cache hash the file. A match proves the bytes read were the
right ones, and libtorrent only ever writes those to a verified piece.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

READ_BLOCK = 4 << 20
POLL_S = 0.02


@dataclass(frozen=True)
class Digest:
    sha256: str
    size: int


@dataclass(frozen=True)
class _Span:
    path: Path
    start: int  # offset of the file in the torrent (v2: piece-aligned)
    size: int


class InOrderHasher:
    """Hashes the files of one torrent as the verified prefix of its pieces grows.

    ``advance(pieces)``: pieces ``0 .. pieces-1`` passed their Merkle check.
    ``finish()``: every piece is verified and written; hash the rest, return the digests.
    """

    def __init__(self, folder: Path, info: Any, queued_bytes: int = 0) -> None:
        files = info.layout()
        self._piece_length = int(info.piece_length())
        self.num_pieces = int(info.num_pieces())
        self._spans = [
            _Span(folder / files.file_path(i), int(files.file_offset(i)), int(files.file_size(i)))
            for i in range(files.num_files())
            if not files.file_flags(i) & files.flag_pad_file and files.file_size(i)
        ]
        self._verified = 0  # bytes of the torrent from its start that passed the checks
        # Verified blocks wait in libtorrent's write queue (at most ``queued_bytes``) before
        # they reach the file: read that far behind the verified edge.
        self._lag = queued_bytes + 2 * self._piece_length
        self._all_written = False
        self._stop = False
        self._cond = threading.Condition()
        self._digests: dict[Path, Digest] = {}
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="terminus-p2p-hash", daemon=True)
        self._thread.start()

    def advance(self, verified_prefix_pieces: int) -> None:
        verified = min(verified_prefix_pieces, self.num_pieces) * self._piece_length
        with self._cond:
            if verified > self._verified:
                self._verified = verified
                self._cond.notify()

    def finish(self) -> dict[Path, Digest]:
        """Every piece is verified and flushed to the files: hash what is left."""
        with self._cond:
            self._verified = self.num_pieces * self._piece_length
            self._all_written = True
            self._cond.notify()
        self._thread.join()
        return {} if self._error is not None else dict(self._digests)

    def cancel(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join()

    def _run(self) -> None:
        try:
            for span in self._spans:
                digest = self._hash_span(span)
                if digest is None:
                    return
                self._digests[span.path] = digest
        except OSError as exc:  # the cache hashes the file instead
            self._error = exc

    def _readable(self, span: _Span, fd: int, done: int) -> int:
        """How far from ``done`` the file can be read now (0: wait); -1 when stopped."""
        with self._cond:
            if self._stop:
                return -1
            behind = 0 if self._all_written else self._lag
            limit = min(self._verified - behind - span.start, span.size)
            if limit <= done or fd < 0:
                self._cond.wait(POLL_S)
                return 0
            return limit

    def _hash_span(self, span: _Span) -> Digest | None:
        sha = hashlib.sha256()
        done = 0
        buffer = bytearray(READ_BLOCK)
        fd = -1
        try:
            while done < span.size:
                if fd < 0 and span.path.exists():
                    fd = os.open(span.path, os.O_RDONLY)
                if fd < 0 and self._all_written:
                    raise OSError(f"{span.path} is missing")
                limit = self._readable(span, fd, done)
                if limit < 0:
                    return None
                hashed_from = done
                while done < limit:
                    view = memoryview(buffer)[: min(READ_BLOCK, limit - done)]
                    n = os.preadv(fd, [view], done)
                    if n <= 0:
                        raise OSError(f"{span.path} ended at {done} of {span.size} bytes")
                    sha.update(view[:n])
                    done += n
                start_writeback(fd, hashed_from, done - hashed_from)
            return Digest(sha.hexdigest(), done)
        finally:
            if fd >= 0:
                os.close(fd)


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing ``length`` bytes at ``offset`` to disk, without
    waiting: the one fsync before the rename then finds most of the file already written
    (200 MB: ~0.1 s of fsync here otherwise). Linux only; elsewhere the fsync does it all."""
    sync = _sync_file_range()
    if sync is not None and length > 0:
        sync(fd, offset, length, _SYNC_FILE_RANGE_WRITE)  # a failure only leaves it to fsync


_SYNC_FILE_RANGE_WRITE = 2


@functools.cache
def _sync_file_range() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except AttributeError:
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


def verified_prefix(pieces: Any, start: int) -> int:
    """How many pieces from the first are verified, scanning from ``start`` (known good)."""
    count = start
    total = len(pieces)
    while count < total and pieces[count]:
        count += 1
    return count
