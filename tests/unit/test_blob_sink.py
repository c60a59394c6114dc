"""The blob sink writes and hashes in worker threads: order, ownership, errors, resume."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

import pytest

from terminus.models.sources import base
from terminus.models.sources.base import BATCH, BlobSink
from terminus.models.sources.http_direct import uses_proxy

DATA = os.urandom(3 * BATCH + 12345)


def test_mixed_write_sizes_keep_their_order(tmp_path: Path) -> None:
    path = tmp_path / "blob.incomplete"
    sink = BlobSink(path, resume=False)
    pieces = [DATA[:10], DATA[10 : 10 + 70000], DATA[70010 : 2 * BATCH], DATA[2 * BATCH :]]
    for piece in pieces:
        sink.write(memoryview(bytearray(piece)))  # buffers handed over, never reused
    assert sink.offset == len(DATA)
    sink.close()
    assert sink.hexdigest() == hashlib.sha256(DATA).hexdigest()
    assert path.read_bytes() == DATA


def test_resume_rehashes_the_partial_prefix_once(tmp_path: Path) -> None:
    path = tmp_path / "blob.incomplete"
    path.write_bytes(DATA[: BATCH + 7])  # left by a killed transfer
    sink = BlobSink(path, resume=True)
    assert sink.offset == BATCH + 7
    sink.write(DATA[BATCH + 7 :])
    sink.close()
    assert sink.hexdigest() == hashlib.sha256(DATA).hexdigest()


def test_restart_after_buffered_writes_starts_from_zero(tmp_path: Path) -> None:
    path = tmp_path / "blob.incomplete"
    sink = BlobSink(path, resume=False)
    sink.write(os.urandom(2 * BATCH))
    sink.write(b"tail")
    sink.restart()
    sink.write(DATA)
    sink.close()
    assert sink.hexdigest() == hashlib.sha256(DATA).hexdigest()
    assert path.read_bytes() == DATA


def test_a_disk_error_in_the_writer_reaches_the_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int, data: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(base, "_write_all", full)
    sink = BlobSink(tmp_path / "blob.incomplete", resume=False)
    with pytest.raises(OSError, match="No space left"):
        for _ in range(2 * base.DEPTH + 2):  # the error surfaces at a later write or close
            sink.write(DATA)
        sink.close()
    sink.close()  # idempotent: the threads are gone, the descriptor closed
    with pytest.raises(OSError, match="not written whole"):
        sink.hexdigest()  # a short file never gets a digest that could pass


def test_proxy_settings_route_downloads_through_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert not uses_proxy("https://huggingface.co/x")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert uses_proxy("https://huggingface.co/x")
    monkeypatch.setenv("NO_PROXY", "huggingface.co")
    assert not uses_proxy("https://huggingface.co/x")
