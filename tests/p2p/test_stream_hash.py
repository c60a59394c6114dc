"""The in-order hasher of torrent downloads: pieces in any order, files piece-aligned."""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from terminus.p2p.stream_hash import MAX_IN_FLIGHT, InOrderHasher, verified_prefix

PIECE = 16


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


def _pieces(datas: list[bytes]) -> list[bytes]:
    out = []
    for data in datas:
        out += [data[i : i + PIECE] for i in range(0, len(data), PIECE)]
    return out


def test_pieces_out_of_order_hash_each_file_whole(tmp_path: Path) -> None:
    datas = [bytes(range(50)), b"x" * 32, b"tail!"]
    pieces = _pieces(datas)
    hasher = InOrderHasher(tmp_path, _info([len(d) for d in datas]))
    assert hasher.num_pieces == len(pieces)
    assert list(hasher.wanted(len(pieces))) == list(range(min(len(pieces), MAX_IN_FLIGHT)))
    for index in reversed(range(len(pieces))):
        hasher.add(index, pieces[index])
    assert hasher.complete
    digests = hasher.finish()
    assert {p.name: d.sha256 for p, d in digests.items()} == {
        f"f{i}": hashlib.sha256(d).hexdigest() for i, d in enumerate(datas)
    }
    assert [d.size for d in digests.values()] == [50, 32, 5]


def test_an_unreadable_piece_reports_no_digest(tmp_path: Path) -> None:
    hasher = InOrderHasher(tmp_path, _info([40]))
    hasher.add(0, b"a" * PIECE)
    hasher.add(1, None)
    hasher.add(2, b"b" * 8)
    assert hasher.finish() == {}  # the cache then hashes the file itself


def test_reads_wait_for_the_hash_to_keep_up(tmp_path: Path) -> None:
    hasher = InOrderHasher(tmp_path, _info([PIECE * (MAX_IN_FLIGHT + 4)]))
    assert len(hasher.wanted(3)) == 3
    assert len(hasher.wanted(MAX_IN_FLIGHT + 4)) == MAX_IN_FLIGHT - 3
    assert len(hasher.wanted(MAX_IN_FLIGHT + 4)) == 0
    hasher.cancel()


def test_verified_prefix_scans_from_the_known_start() -> None:
    assert verified_prefix([True, True, False, True], 0) == 2
    assert verified_prefix([True, True, True, True], 2) == 4
    assert verified_prefix([], 0) == 0
