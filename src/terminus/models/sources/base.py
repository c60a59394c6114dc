"""The source interface and the hashing sink every source writes through."""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from terminus.models.card import ModelFile
from terminus.models.progress import Progress

#: What sinks accept: ``write`` takes ownership of the buffer.
Buffer = bytes | bytearray | memoryview

CHUNK = 1 << 20
#: Bytes gathered before they are handed to the writer and hasher threads: few hand-offs
#: per file, and buffers large enough that hashlib and write release the GIL for long.
BATCH = 4 << 20
#: Batches in flight per stage: bounds memory (DEPTH * BATCH per stage) and applies
#: back-pressure to the receiving side when the disk or the hash falls behind.
DEPTH = 4


class _Stage:
    """One worker thread applying ``work`` to buffers in order (writing, or hashing).

    A failure is kept and raised to the producer once, at its next ``put``/``drain``;
    the buffers after it are dropped.
    """

    def __init__(self, name: str, work: Callable[[Buffer], object]) -> None:
        self._work = work
        self._queue: queue.Queue[Buffer | None] = queue.Queue(maxsize=DEPTH)
        self._error: BaseException | None = None
        self._failed = False
        self._thread = threading.Thread(target=self._run, name=f"blob-{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                if not self._failed:
                    self._work(item)
            except BaseException as exc:  # kept for the producer; the thread keeps draining
                self._error, self._failed = exc, True
            finally:
                self._queue.task_done()

    def put(self, item: Buffer) -> None:
        self._raise()
        self._queue.put(item)

    def drain(self) -> None:
        self._queue.join()
        self._raise()

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join()

    @property
    def failed(self) -> bool:
        return self._failed

    def _raise(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error


def _write_all(fd: int, data: Buffer) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class BlobSink:
    """Appends to ``<sha>.incomplete`` while hashing; resumable across processes.

    On open, bytes already in the partial file are hashed once, so a source that
    resumes (HTTP Range) only sends the rest and the final hash still covers all of it.
    Received bytes are hashed as they are written, in the same pass: one thread writes,
    another hashes, both off the receiving thread, so network, disk and hash overlap
    (the file is never read back). ``write`` takes ownership of its argument: a caller
    must not change a buffer after handing it over. ``close`` syncs the file once.
    """

    def __init__(self, path: Path, *, resume: bool) -> None:
        self.path = path
        self._hash = hashlib.sha256()
        if not resume and path.exists():
            path.unlink()
        self.offset = 0
        if path.exists():
            with path.open("rb", buffering=0) as fh:
                block = bytearray(BATCH)
                while n := fh.readinto(block):
                    self._hash.update(memoryview(block)[:n])
                    self.offset += n
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._pending = bytearray()
        self._stages: tuple[_Stage, _Stage] | None = None
        self._closed = False

    def write(self, data: Buffer) -> None:
        size = len(memoryview(data))
        if not size:
            return
        self.offset += size
        if size >= BATCH:
            self._flush_pending()
            self._dispatch(data)
            return
        self._pending += data
        if len(self._pending) >= BATCH:
            self._flush_pending()

    def restart(self) -> None:
        """Drop what was written (the server ignored our Range request)."""
        self._pending = bytearray()
        self._drain()
        os.ftruncate(self._fd, 0)
        self._hash = hashlib.sha256()
        self.offset = 0

    def hexdigest(self) -> str:
        if not self._closed:
            self._flush_pending()
            self._drain()
        if self._stages is not None and any(stage.failed for stage in self._stages):
            raise OSError(f"{self.path} was not written whole")  # never a digest for it
        return self._hash.hexdigest()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._flush_pending()
            self._drain()
            os.fsync(self._fd)
        finally:
            if self._stages is not None:
                for stage in self._stages:
                    stage.stop()
            os.close(self._fd)

    def _flush_pending(self) -> None:
        if self._pending:
            pending, self._pending = self._pending, bytearray()
            self._dispatch(pending)

    def _dispatch(self, data: Buffer) -> None:
        if self._stages is None:
            fd = self._fd
            self._stages = (
                _Stage("write", lambda b: _write_all(fd, b)),
                _Stage("hash", lambda b: self._hash.update(b)),
            )
        for stage in self._stages:
            stage.put(data)

    def _drain(self) -> None:
        if self._stages is not None:
            for stage in self._stages:
                stage.drain()


@dataclass(frozen=True)
class StagedFile:
    """A file a source wrote on the cache's filesystem and hashed itself, in one pass as
    the bytes arrived (e.g. peers: each verified piece hashed right after it was written),
    then synced to disk. The cache compares ``sha256``/``size`` with the card and renames
    the file into place without reading it again."""

    path: Path
    sha256: str
    size: int


class Source(Protocol):
    """Delivers the bytes of model files by name."""

    #: True when a partial file from an earlier attempt can be continued.
    resumable: bool

    def describe(self) -> str:
        """One line for errors and ``models info``."""
        ...

    def provides(self, file_name: str) -> bool: ...

    def fetch(self, file: ModelFile, sink: BlobSink, progress: Progress) -> None:
        """Write the file's bytes to ``sink`` starting at ``sink.offset``.

        Raises ``SourceUnavailableError`` when it cannot deliver. Hash checking is
        the cache's job, not the source's.
        """
        ...


def copy_file_into(path: Path, sink: BlobSink, progress: Progress) -> None:
    with path.open("rb") as fh:
        while block := fh.read(BATCH):
            sink.write(block)
            progress.advance(len(block))
