"""A cached blob is checked before use: its stamp must match, or its hash is taken again."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from terminus.errors import ChecksumMismatchError, ModelNotCachedError
from terminus.models.cache import ModelCache
from terminus.models.card import LocalSource, ModelCard, ModelFile
from terminus.models.progress import NullProgress
from terminus.models.sources.local import LocalFileSource
from terminus.models.stamps import Stamp
from terminus.types.common import Capability

PAYLOAD = os.urandom(128 * 1024 + 3)
SHA = hashlib.sha256(PAYLOAD).hexdigest()


def _card(src: Path) -> ModelCard:
    return ModelCard(
        id="m",
        capability=Capability.CHAT,
        engine="fake",
        files=(ModelFile(name="model.gguf", sha256=SHA, size=len(PAYLOAD)),),
        sources=(LocalSource(paths={"model.gguf": str(src)}),),
    )


@pytest.fixture
def cached(tmp_path: Path) -> tuple[ModelCache, ModelCard, Path]:
    src = tmp_path / "src.gguf"
    src.write_bytes(PAYLOAD)
    cache = ModelCache(tmp_path / "home")
    card = _card(src)
    cache.ensure(card, [LocalFileSource(card.sources[0])])  # type: ignore[arg-type]
    return cache, card, src


def _flip_byte(blob: Path, offset: int = 1000, *, keep_mtime: bool = False) -> None:
    st = blob.stat()
    blob.chmod(0o644)
    with blob.open("r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([byte[0] ^ 0x01]))
    blob.chmod(0o444)
    if keep_mtime:
        os.utime(blob, ns=(st.st_atime_ns, st.st_mtime_ns))


class CountingProgress(NullProgress):
    def __init__(self) -> None:
        self.descriptions: list[str] = []
        self.bytes = 0

    def start(self, description: str, total: int | None, initial: int = 0) -> None:
        self.descriptions.append(description)

    def advance(self, n: int) -> None:
        self.bytes += n


def test_a_fetch_records_a_stamp_and_a_matching_stamp_skips_the_hash(
    cached: tuple[ModelCache, ModelCard, Path],
) -> None:
    cache, card, _ = cached
    blob = cache.blob_path(SHA)
    assert cache.stamps.read(SHA) == Stamp.of(blob)
    assert sorted(p.name for p in cache.blobs.iterdir()) == [SHA]  # stamps live elsewhere
    progress = CountingProgress()
    assert cache.files(card, progress).main.resolve() == blob
    assert progress.bytes == 0  # nothing was hashed


@pytest.mark.parametrize("keep_mtime", [False, True], ids=["write", "write-then-restore-mtime"])
def test_a_flipped_byte_is_never_handed_out(
    cached: tuple[ModelCache, ModelCard, Path], keep_mtime: bool
) -> None:
    cache, card, _ = cached
    blob = cache.blob_path(SHA)
    before = blob.stat()
    _flip_byte(blob, keep_mtime=keep_mtime)
    if keep_mtime:
        assert blob.stat().st_mtime_ns == before.st_mtime_ns
        assert blob.stat().st_size == before.st_size
    assert cache.is_cached(card)  # the size alone cannot tell
    with pytest.raises(ChecksumMismatchError, match="corrupt") as info:
        cache.files(card)
    assert info.value.hint == "terminus models pull m"
    assert not blob.exists()
    assert cache.stamps.read(SHA) is None
    with pytest.raises(ModelNotCachedError):
        cache.files(card)


def test_a_swapped_file_with_the_same_stat_times_is_caught(
    cached: tuple[ModelCache, ModelCard, Path], tmp_path: Path
) -> None:
    """Another file renamed over the blob, with size and mtime copied: the inode differs."""
    cache, card, _ = cached
    blob = cache.blob_path(SHA)
    st = blob.stat()
    evil = tmp_path / "evil"
    evil.write_bytes(bytes(len(PAYLOAD)))
    os.utime(evil, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(evil, blob)
    with pytest.raises(ChecksumMismatchError):
        cache.files(card)


def test_a_changed_stat_with_intact_bytes_is_rehashed_once(
    cached: tuple[ModelCache, ModelCard, Path],
) -> None:
    cache, card, _ = cached
    blob = cache.blob_path(SHA)
    blob.chmod(0o444)  # touches ctime only
    os.utime(blob)  # and mtime
    progress = CountingProgress()
    cache.files(card, progress)
    assert progress.bytes == len(PAYLOAD)
    assert progress.descriptions == ["verifying model.gguf"]
    assert cache.stamps.read(SHA) == Stamp.of(blob)
    again = CountingProgress()
    cache.files(card, again)
    assert again.bytes == 0


def test_a_blob_without_a_stamp_is_hashed_before_use(
    cached: tuple[ModelCache, ModelCard, Path],
) -> None:
    """A cache written before stamps existed: the first use hashes it."""
    cache, card, _ = cached
    cache.stamps.forget(SHA)
    progress = CountingProgress()
    cache.files(card, progress)
    assert progress.bytes == len(PAYLOAD)
    assert cache.stamps.read(SHA) is not None


def test_a_garbled_stamp_means_hash_again(cached: tuple[ModelCache, ModelCard, Path]) -> None:
    cache, card, _ = cached
    cache.stamps.path(SHA).write_text("{not json")
    progress = CountingProgress()
    cache.files(card, progress)
    assert progress.bytes == len(PAYLOAD)


def test_ensure_fetches_a_corrupt_blob_again_from_its_source(
    cached: tuple[ModelCache, ModelCard, Path],
) -> None:
    cache, card, _ = cached
    blob = cache.blob_path(SHA)
    _flip_byte(blob, keep_mtime=True)
    files = cache.ensure(card, [LocalFileSource(card.sources[0])])  # type: ignore[arg-type]
    assert files.main.read_bytes() == PAYLOAD
    assert cache.stamps.read(SHA) == Stamp.of(blob)


def test_verify_renews_and_removes_stamps(cached: tuple[ModelCache, ModelCard, Path]) -> None:
    cache, card, _ = cached
    cache.stamps.forget(SHA)
    assert cache.verify(card)[0].ok
    assert cache.stamps.read(SHA) is not None
    _flip_byte(cache.blob_path(SHA))
    assert not cache.verify(card)[0].ok
    assert cache.stamps.read(SHA) is None


def test_remove_forgets_the_stamp(cached: tuple[ModelCache, ModelCard, Path]) -> None:
    cache, card, _ = cached
    cache.remove(card)
    assert cache.stamps.read(SHA) is None


def test_import_path_stamps_the_new_blob(tmp_path: Path) -> None:
    src = tmp_path / "x.gguf"
    src.write_bytes(PAYLOAD)
    cache = ModelCache(tmp_path / "home")
    entry = cache.import_path(src)
    assert cache.stamps.read(entry.sha256) == Stamp.of(cache.blob_path(entry.sha256))
