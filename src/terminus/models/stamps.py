"""Verification stamps: what a blob's inode looked like right after its hash last matched.

Re-hashing a multi-gigabyte model before every load costs seconds; comparing a stat costs
microseconds. A stamp records ``(device, inode, size, mtime_ns, ctime_ns)`` of a blob the
moment a full sha256 pass matched. Any write to the file, a ``chmod`` (needed to write a
read-only blob), an ``os.utime`` that puts the old mtime back, or a file swapped in by rename
changes at least the ctime or the inode, and the kernel sets ctime itself: user space cannot
restore it. So a matching stamp means the bytes are the ones that were hashed, and any other
stamp means they are hashed again before use.

Stamps live in ``$TERMINUS_HOME/stamps/<sha256>``, away from ``blobs/`` (which holds model
bytes only). A missing or unreadable stamp just means "hash again".
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Stamp:
    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, path: Path) -> Stamp:
        st = path.stat()
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class StampStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, sha256: str) -> Path:
        return self.folder / sha256

    def matches(self, sha256: str, blob: Path) -> bool:
        """True when ``blob`` is unchanged since its hash last matched ``sha256``."""
        recorded = self.read(sha256)
        if recorded is None:
            return False
        try:
            return Stamp.of(blob) == recorded
        except OSError:
            return False

    def read(self, sha256: str) -> Stamp | None:
        try:
            return Stamp(**json.loads(self.path(sha256).read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def record(self, sha256: str, stamp: Stamp) -> None:
        """Write a stamp atomically: a reader sees the old one, the new one or none."""
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".{sha256}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
        tmp.write_text(json.dumps(asdict(stamp)))
        os.replace(tmp, self.path(sha256))

    def forget(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)
