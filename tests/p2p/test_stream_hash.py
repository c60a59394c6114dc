"""The in-order hasher of torrent downloads: files piece-aligned, read once written."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from terminus.p2p.stream_hash import InOrderHasher, verified_prefix

PIECE = 1 << 16


def _info(sizes: list[int]) -> Any:
    """A stand-in for libtorrent's torrent_info: v2 files start on piece boundaries."""
    offsets, offset = [], 0
    for size in sizes:
        offsets.append(offset)
        offset += -(-size // PIECE) * PIECE
    layout = SimpleNamespace(
        num_files=lambda: len(sizes),
        file_flags=lambda i: 0,
        flag_pad_file=1,
        file_size=lambda i: sizes[i],
        file_offset=lambda i: offsets[i],
        file_path=lambda i: f"blobs/f{i}",
    )
    return SimpleNamespace(
        layout=lambda: layout, piece_length=lambda: PIECE, num_pieces=lambda: offset // PIECE
    )


def test_files_are_hashed_as_their_pieces_are_verified_and_written(tmp_path: Path) -> None:
    datas = [bytes(range(256)) * 700, b"x" * PIECE, b"tail!"]
    (tmp_path / "blobs").mkdir()
    hasher = InOrderHasher(tmp_path, _info([len(d) for d in datas]))
    # a sparse file, written front to back as a download in order would
    first = tmp_path / "blobs" / "f0"
    with first.open("wb") as fh:
        fh.truncate(len(datas[0]))
        fh.write(datas[0][: 2 * PIECE])
    hasher.advance(2)
    time.sleep(0.2)  # the hasher reads what is verified and written, then waits
    with first.open("r+b") as fh:
        fh.seek(2 * PIECE)
        fh.write(datas[0][2 * PIECE :])
    for i, data in enumerate(datas[1:], start=1):
        (tmp_path / "blobs" / f"f{i}").write_bytes(data)
    digests = hasher.finish()
    assert {p.name: (d.sha256, d.size) for p, d in digests.items()} == {
        f"f{i}": (hashlib.sha256(d).hexdigest(), len(d)) for i, d in enumerate(datas)
    }


def test_a_missing_file_reports_no_digest(tmp_path: Path) -> None:
    hasher = InOrderHasher(tmp_path, _info([40]))
    assert hasher.finish() == {}  # the cache then hashes the file itself


def test_cancel_stops_a_waiting_hasher(tmp_path: Path) -> None:
    hasher = InOrderHasher(tmp_path, _info([PIECE * 3]))
    hasher.advance(1)
    hasher.cancel()


def test_verified_prefix_scans_from_the_known_start() -> None:
    assert verified_prefix([True, True, False, True], 0) == 2
    assert verified_prefix([True, True, True, True], 2) == 4
    assert verified_prefix([], 0) == 0
