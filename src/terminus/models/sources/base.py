"""The source interface and the hashing sink every source writes through."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import BinaryIO, Protocol

from terminus.models.card import ModelFile
from terminus.models.progress import Progress

CHUNK = 1 << 20


class BlobSink:
    """Appends to ``<sha>.incomplete`` while hashing; resumable across processes.

    On open, bytes already in the partial file are hashed first, so a source that
    resumes (HTTP Range) only sends the rest and the final hash still covers all of it.
    """

    def __init__(self, path: Path, *, resume: bool) -> None:
        self.path = path
        self._hash = hashlib.sha256()
        if not resume and path.exists():
            path.unlink()
        self.offset = 0
        if path.exists():
            with path.open("rb") as fh:
                while block := fh.read(CHUNK):
                    self._hash.update(block)
                    self.offset += len(block)
        self._fh: BinaryIO = path.open("ab")

    def write(self, data: bytes | memoryview) -> None:
        self._fh.write(data)
        self._hash.update(data)
        self.offset += len(data)

    def restart(self) -> None:
        """Drop what was written (the server ignored our Range request)."""
        self._fh.truncate(0)
        self._fh.seek(0)
        self._hash = hashlib.sha256()
        self.offset = 0

    def hexdigest(self) -> str:
        return self._hash.hexdigest()

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()


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
        while block := fh.read(CHUNK):
            sink.write(block)
            progress.advance(len(block))
