"""KV snapshot folder without a model: verification, refusals, atomic visibility, eviction."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from terminus.engines.llamacpp_kvdisk import (
    DEFAULT_BUDGET_MIB,
    Identity,
    KVDiskCache,
    budget_mib,
    prefix_id,
)
from terminus.errors import InvalidParameterError

IDENTITY = Identity("a" * 64, "xllamacpp 1.0", "b" * 64, 1024)


def _snapshot(cache: KVDiskCache, prefix: str, size: int, age: int) -> Path:
    """A committed snapshot as ``save`` leaves it: data, then metadata naming its hash."""
    data = cache.folder / f"{prefix}-0000.kv"
    data.write_bytes(os.urandom(size))
    meta = {
        **asdict(cache.identity),
        "prefix": prefix,
        "file": data.name,
        "sha256": hashlib.sha256(data.read_bytes()).hexdigest(),
        "bytes": size,
    }
    meta_path = cache.folder / f"{prefix}.json"
    meta_path.write_text(json.dumps(meta))
    os.utime(meta_path, (1_000_000 + age, 1_000_000 + age))
    return data


def test_a_good_snapshot_is_found(tmp_path: Path) -> None:
    cache = KVDiskCache(tmp_path, IDENTITY, 1 << 20)
    data = _snapshot(cache, "p1", 100, 0)
    assert cache.verified("p1") == data.name
    assert cache.verified("p2") is None
    assert cache.stats["refused"] == 0


def test_a_tampered_snapshot_is_refused_and_deleted(tmp_path: Path) -> None:
    cache = KVDiskCache(tmp_path, IDENTITY, 1 << 20)
    data = _snapshot(cache, "p1", 100, 0)
    data.write_bytes(b"x" * 100)
    assert cache.verified("p1") is None
    assert cache.stats["refused"] == 1
    assert not data.exists() and not (cache.folder / "p1.json").exists()


@pytest.mark.parametrize(
    "field, value",
    [("model_sha256", "c" * 64), ("engine_build", "xllamacpp 2.0"), ("template_sha256", "d" * 64)],
)
def test_a_snapshot_of_another_model_build_or_template_is_refused(
    tmp_path: Path, field: str, value: str
) -> None:
    other = KVDiskCache(tmp_path, replace(IDENTITY, **{field: value}), 1 << 20)
    mine = KVDiskCache(tmp_path, IDENTITY, 1 << 20)
    assert other.folder != mine.folder  # each identity has its own folder
    _snapshot(other, "p1", 100, 0)
    # copied where the loaded model looks: its metadata still names the other identity
    for path in other.folder.iterdir():
        path.rename(mine.folder / path.name)
    assert mine.verified("p1") is None
    assert mine.stats["refused"] == 1


def test_a_half_written_snapshot_is_never_valid(tmp_path: Path) -> None:
    cache = KVDiskCache(tmp_path, IDENTITY, 1 << 20)
    (cache.folder / "tmp-p1-0000.kv").write_bytes(b"partial")  # llama.cpp was still writing
    (cache.folder / "p1-0000.kv").write_bytes(b"renamed, no metadata yet")
    assert cache.verified("p1") is None
    (cache.folder / "p1.json").write_text('{"prefix": "p1", "file": "p1-00')  # torn write
    assert cache.verified("p1") is None and cache.stats["refused"] == 1


def test_eviction_keeps_the_folder_within_its_budget(tmp_path: Path) -> None:
    cache = KVDiskCache(tmp_path, IDENTITY, 250)
    for age, prefix in enumerate(["old", "mid", "new"]):
        _snapshot(cache, prefix, 100, age)
    (cache.folder / "orphan-0000.kv").write_bytes(b"x" * 50)  # no metadata: a crash left it
    stale = cache.folder / "tmp-gone-0000.kv"
    stale.write_bytes(b"x" * 50)  # a save that never finished, long ago
    os.utime(stale, (1_000_000, 1_000_000))
    fresh = cache.folder / "tmp-now-0000.kv"
    fresh.write_bytes(b"x")  # a save in progress: left alone
    cache._evict()
    assert not stale.exists() and fresh.exists()
    fresh.unlink()
    assert cache.usage_bytes() <= 250
    assert cache.verified("old") is None  # least recently used went first
    assert cache.verified("new") is not None and cache.verified("mid") is not None
    assert cache.stats["evicted"] == 1 and cache.stats["refused"] == 0


def test_budget_and_prefix_keys() -> None:
    assert budget_mib(True) == DEFAULT_BUDGET_MIB and budget_mib(None) == 0
    assert budget_mib(64) == 64 and budget_mib(False) == 0
    with pytest.raises(InvalidParameterError, match="kv_disk_cache"):
        budget_mib("lots")
    system = [{"role": "system", "content": "context"}]
    assert prefix_id(system) == prefix_id([dict(system[0])])
    assert prefix_id(system) != prefix_id([{"role": "system", "content": "context!"}])
