"""The cache's whole-file sha256 of a torrent download, computed while it downloads.

libtorrent checks every block against the v2 Merkle tree; the cache also needs the flat
sha256 its cards pin. Reading the finished file a second time for it cost about as long
as the transfer. Here the session downloads in order, each piece is asked of libtorrent
(``read_piece``) as soon as it passed its Merkle check — libtorrent hands it from its
write buffer or the page cache — and one thread hashes the pieces of each file front to
back while the rest arrive. A resumed download hashes the pieces already staged first.
If anything goes wrong here, no digest is reported and the cache hashes the file itself.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Pieces read but not hashed yet, at most: bounds the memory held for a slow hash.
MAX_IN_FLIGHT = 16


@dataclass(frozen=True)
class Digest:
    sha256: str
    size: int


@dataclass(frozen=True)
class _Span:
    path: Path
    first_piece: int
    last_piece: int
    size: int


class InOrderHasher:
    """Hashes the files of one torrent from pieces handed over in any order.

    ``wanted()`` says which pieces to read next (call it as the verified prefix grows),
    ``add(piece, data)`` hands one over, ``finish()`` returns ``{path: Digest}`` once
    every piece was hashed (or ``{}`` after a failure).
    """

    def __init__(self, folder: Path, info: Any) -> None:
        files = info.layout()
        piece_length = int(info.piece_length())
        self.num_pieces = int(info.num_pieces())
        self._spans: list[_Span] = []
        for i in range(files.num_files()):
            if files.file_flags(i) & files.flag_pad_file or not files.file_size(i):
                continue
            start, size = int(files.file_offset(i)), int(files.file_size(i))
            self._spans.append(
                _Span(
                    folder / files.file_path(i),
                    start // piece_length,
                    (start + size - 1) // piece_length,
                    size,
                )
            )
        self._requested = 0  # pieces 0 .. requested-1 were asked for
        self._received = 0
        self._hashed = 0  # pieces taken off the queue by the hashing thread
        self._queue: queue.Queue[tuple[int, bytes] | None] = queue.Queue()
        self._digests: dict[Path, Digest] = {}
        self._failed = False
        self._thread = threading.Thread(target=self._run, name="terminus-p2p-hash", daemon=True)
        self._thread.start()

    def wanted(self, verified_prefix: int) -> range:
        """Pieces to read now: the ones newly inside the verified prefix, as long as the
        hash keeps up (``MAX_IN_FLIGHT``)."""
        limit = min(verified_prefix, self._hashed + MAX_IN_FLIGHT)
        start, self._requested = self._requested, max(self._requested, limit)
        return range(start, self._requested)

    @property
    def complete(self) -> bool:
        return self._received >= self.num_pieces or self._failed

    def add(self, piece: int, data: bytes | None) -> None:
        """One piece's bytes (``None``: libtorrent could not read it: give up hashing)."""
        self._received += 1
        if data is None:
            self._failed = True
        self._queue.put((piece, data or b""))

    def finish(self) -> dict[Path, Digest]:
        self._queue.put(None)
        self._thread.join()
        return {} if self._failed else dict(self._digests)

    def cancel(self) -> None:
        self._failed = True
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        waiting: dict[int, bytes] = {}
        spans = iter(self._spans)
        span = next(spans, None)
        sha, size, piece = hashlib.sha256(), 0, 0
        while span is not None:
            item = self._queue.get()
            if item is None or self._failed:
                return
            waiting[item[0]] = item[1]
            self._hashed += 1
            while span is not None and piece in waiting:
                data = waiting.pop(piece)
                if span.first_piece <= piece <= span.last_piece:
                    data = data[: span.size - size]  # v2: a file's last piece is short
                    sha.update(data)
                    size += len(data)
                piece += 1
                if piece > span.last_piece:
                    if size != span.size:
                        log.warning("%s: hashed %d of %d bytes", span.path, size, span.size)
                        self._failed = True
                        return
                    self._digests[span.path] = Digest(sha.hexdigest(), size)
                    span = next(spans, None)
                    sha, size = hashlib.sha256(), 0
                    if span is not None:
                        piece = span.first_piece


def verified_prefix(pieces: Any, start: int) -> int:
    """How many pieces from the first are verified, scanning from ``start`` (known good)."""
    count = start
    total = len(pieces)
    while count < total and pieces[count]:
        count += 1
    return count
