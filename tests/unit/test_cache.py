"""The content-addressed cache: nothing unverified is ever visible under blobs/."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from terminus.errors import (
    ChecksumMismatchError,
    ModelNotCachedError,
    SourceUnavailableError,
)
from terminus.models.cache import ModelCache
from terminus.models.card import LocalSource, ModelCard, ModelFile
from terminus.models.progress import NullProgress
from terminus.models.sources import make_source
from terminus.models.sources.base import BlobSink
from terminus.models.sources.local import LocalFileSource
from terminus.types.common import Capability

PAYLOAD = os.urandom(256 * 1024 + 7)
SHA = hashlib.sha256(PAYLOAD).hexdigest()


def _card(card_id: str, files: dict[str, bytes], paths: dict[str, Path] | None = None) -> ModelCard:
    return ModelCard(
        id=card_id,
        capability=Capability.CHAT,
        engine="fake",
        files=tuple(
            ModelFile(name=name, sha256=hashlib.sha256(data).hexdigest(), size=len(data))
            for name, data in files.items()
        ),
        sources=(LocalSource(paths={k: str(v) for k, v in (paths or {}).items()}),),
    )


def _local(paths: dict[str, Path]) -> LocalFileSource:
    return LocalFileSource(LocalSource(paths={k: str(v) for k, v in paths.items()}))


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _blob_dir_names(cache: ModelCache) -> list[str]:
    return sorted(p.name for p in cache.blobs.iterdir()) if cache.blobs.exists() else []


@pytest.fixture
def cache(tmp_path: Path) -> ModelCache:
    return ModelCache(tmp_path / "home")


# --- fetching ------------------------------------------------------------------------------


def test_ensure_fetches_verifies_and_links(cache: ModelCache, tmp_path: Path) -> None:
    src = _write(tmp_path / "src" / "model.gguf", PAYLOAD)
    card = _card("m", {"model.gguf": PAYLOAD}, {"model.gguf": src})
    assert not cache.is_cached(card)
    with pytest.raises(ModelNotCachedError):
        cache.files(card)
    files = cache.ensure(card, [make_source(s) for s in card.sources])
    blob = cache.blob_path(SHA)
    assert blob.read_bytes() == PAYLOAD
    assert blob.stat().st_mode & 0o222 == 0  # read-only
    assert _blob_dir_names(cache) == [SHA]  # no partial or staging leftovers
    link = cache.models / "m" / "model.gguf"
    assert files.main == link == files.paths["model.gguf"]
    assert link.is_symlink()
    assert not os.path.isabs(os.readlink(link))  # relative: the home can move
    assert link.resolve() == blob.resolve()
    assert link.read_bytes() == PAYLOAD
    assert cache.is_cached(card) and cache.files(card) == files


def test_nested_file_names_get_nested_links(cache: ModelCache, tmp_path: Path) -> None:
    data = b"tokenizer"
    src = _write(tmp_path / "t.json", data)
    card = _card("m", {"sub/tokenizer.json": data}, {"sub/tokenizer.json": src})
    files = cache.ensure(card, [make_source(s) for s in card.sources])
    assert files.paths["sub/tokenizer.json"].read_bytes() == data
    assert (cache.models / "m" / "sub" / "tokenizer.json").is_symlink()


def test_wrong_bytes_are_rejected_and_leave_nothing(cache: ModelCache, tmp_path: Path) -> None:
    src = _write(tmp_path / "bad.gguf", PAYLOAD[:-1] + b"X")
    card = _card("m", {"model.gguf": PAYLOAD})
    with pytest.raises(ChecksumMismatchError) as info:
        cache.ensure(card, [_local({"model.gguf": src})])
    assert isinstance(info.value, ValueError)
    assert not cache.blob_path(SHA).exists()
    assert not [n for n in _blob_dir_names(cache) if SHA in n]
    assert not cache.is_cached(card)
    assert not (cache.models / "m").exists()


def test_wrong_size_with_right_prefix_is_rejected(cache: ModelCache, tmp_path: Path) -> None:
    src = _write(tmp_path / "long.gguf", PAYLOAD + b"trailing")
    with pytest.raises(ChecksumMismatchError):
        cache.ensure(_card("m", {"model.gguf": PAYLOAD}), [_local({"model.gguf": src})])
    assert _blob_dir_names(cache) == []


def test_a_bad_source_falls_through_to_a_good_one(cache: ModelCache, tmp_path: Path) -> None:
    bad = _write(tmp_path / "bad", b"nope")
    good = _write(tmp_path / "good", PAYLOAD)
    card = _card("m", {"model.gguf": PAYLOAD})
    cache.ensure(
        card,
        [
            _local({"model.gguf": tmp_path / "missing"}),
            _local({"model.gguf": bad}),
            _local({"model.gguf": good}),
        ],
    )
    assert cache.is_cached(card)


def test_no_source_provides_the_file(cache: ModelCache) -> None:
    with pytest.raises(SourceUnavailableError, match="no source"):
        cache.ensure(_card("m", {"model.gguf": PAYLOAD}), [_local({})])


def test_missing_local_file(cache: ModelCache, tmp_path: Path) -> None:
    with pytest.raises(SourceUnavailableError, match="does not exist"):
        cache.ensure(
            _card("m", {"model.gguf": PAYLOAD}), [_local({"model.gguf": tmp_path / "nope"})]
        )


class _FailingSource:
    """Writes half the bytes, then fails."""

    resumable = False

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
        self.calls = 0

    def describe(self) -> str:
        return "failing"

    def provides(self, file_name: str) -> bool:
        return True

    def fetch(self, file: ModelFile, sink: BlobSink, progress: object) -> None:
        self.calls += 1
        sink.write(PAYLOAD[: len(PAYLOAD) // 2])
        raise self.exc


@pytest.mark.parametrize(
    "exc",
    [SourceUnavailableError("link dropped"), OSError("disk on fire"), KeyboardInterrupt()],
    ids=["unavailable", "oserror", "interrupt"],
)
def test_a_source_failing_mid_copy_leaves_no_blob(cache: ModelCache, exc: BaseException) -> None:
    card = _card("m", {"model.gguf": PAYLOAD})
    source = _FailingSource(exc)
    with pytest.raises(type(exc)):
        cache.ensure(card, [source])
    assert source.calls == 1
    assert not cache.blob_path(SHA).exists()
    assert _blob_dir_names(cache) == []  # the private staging file is gone too
    assert not cache.is_cached(card)


def test_a_failing_source_then_a_good_one(cache: ModelCache, tmp_path: Path) -> None:
    good = _write(tmp_path / "good", PAYLOAD)
    card = _card("m", {"model.gguf": PAYLOAD})
    cache.ensure(card, [_FailingSource(SourceUnavailableError("x")), _local({"model.gguf": good})])
    assert cache.blob_path(SHA).read_bytes() == PAYLOAD


def test_cached_files_are_not_fetched_again(cache: ModelCache, tmp_path: Path) -> None:
    src = _write(tmp_path / "m", PAYLOAD)
    card = _card("m", {"model.gguf": PAYLOAD})
    cache.ensure(card, [_local({"model.gguf": src})])
    source = _FailingSource(AssertionError("must not be called"))
    cache.ensure(card, [source])
    assert source.calls == 0


# --- maintenance ----------------------------------------------------------------------------


def test_verify_finds_and_removes_a_flipped_byte(cache: ModelCache, tmp_path: Path) -> None:
    src = _write(tmp_path / "m", PAYLOAD)
    card = _card("m", {"model.gguf": PAYLOAD})
    cache.ensure(card, [_local({"model.gguf": src})])
    [ok] = cache.verify(card)
    assert ok.ok and ok.detail == "ok"

    blob = cache.blob_path(SHA)
    blob.chmod(0o644)
    with blob.open("r+b") as fh:
        fh.seek(1000)
        byte = fh.read(1)
        fh.seek(1000)
        fh.write(bytes([byte[0] ^ 0xFF]))
    blob.chmod(0o444)
    assert cache.is_cached(card)  # same size: only a re-hash can tell

    [result] = cache.verify(card)
    assert not result.ok and "corrupt" in result.detail
    assert not blob.exists()
    assert not cache.is_cached(card)
    [missing] = cache.verify(card)
    assert not missing.ok and missing.detail == "missing"
    # It can be fetched again.
    cache.ensure(card, [_local({"model.gguf": src})])
    assert cache.verify(card)[0].ok


def _two_sharing_cards(cache: ModelCache, tmp_path: Path) -> tuple[ModelCard, ModelCard, bytes]:
    shared, own = PAYLOAD, b"only in a" * 100
    src_shared = _write(tmp_path / "shared", shared)
    src_own = _write(tmp_path / "own", own)
    a = _card("a", {"model.gguf": shared, "extra.bin": own})
    b = _card("b", {"weights.gguf": shared})
    sources = [_local({"model.gguf": src_shared, "weights.gguf": src_shared, "extra.bin": src_own})]
    cache.ensure(a, sources)
    cache.ensure(b, sources)
    return a, b, own


def test_remove_keeps_blobs_another_card_uses(cache: ModelCache, tmp_path: Path) -> None:
    a, b, own = _two_sharing_cards(cache, tmp_path)
    freed = cache.remove(a, keep_shared_with=[a, b])
    assert freed == len(own)
    assert cache.blob_path(SHA).exists()
    assert not cache.blob_path(hashlib.sha256(own).hexdigest()).exists()
    assert not (cache.models / "a").exists()
    assert cache.is_cached(b) and not cache.is_cached(a)
    assert cache.files(b).main.read_bytes() == PAYLOAD


def test_removing_every_card_that_shares_a_blob_frees_it(cache: ModelCache, tmp_path: Path) -> None:
    a, b, _ = _two_sharing_cards(cache, tmp_path)
    cache.remove(a, keep_shared_with=[a, b])
    assert cache.remove(b, keep_shared_with=[a, b]) == len(PAYLOAD)
    assert _blob_dir_names(cache) == []


def test_remove_ignores_cards_that_are_not_cached(cache: ModelCache, tmp_path: Path) -> None:
    src = _write(tmp_path / "shared", PAYLOAD)
    a = _card("a", {"model.gguf": PAYLOAD})
    b = _card("b", {"model.gguf": PAYLOAD, "other.bin": b"never fetched"})
    cache.ensure(a, [_local({"model.gguf": src})])
    assert not cache.is_cached(b)
    assert cache.remove(a, keep_shared_with=[b]) == len(PAYLOAD)
    assert not cache.blob_path(SHA).exists()


def test_import_path(cache: ModelCache, tmp_path: Path) -> None:
    src = _write(tmp_path / "mine.gguf", PAYLOAD)
    entry = cache.import_path(src)
    assert entry == ModelFile(name="mine.gguf", sha256=SHA, size=len(PAYLOAD))
    assert cache.blob_path(SHA).read_bytes() == PAYLOAD
    assert cache.has_file(entry)
    again = cache.import_path(src)  # importing twice is harmless
    assert again == entry
    assert _blob_dir_names(cache) == [SHA]
    assert src.read_bytes() == PAYLOAD  # the user's file is untouched


def test_import_path_keeps_a_name_with_folders(cache: ModelCache, tmp_path: Path) -> None:
    """Folder models (diffusers, whisper) name files like ``unet/model.safetensors``."""
    src = _write(tmp_path / "model.safetensors", PAYLOAD)
    entry = cache.import_path(src, name="unet/model.safetensors")
    assert entry == ModelFile(name="unet/model.safetensors", sha256=SHA, size=len(PAYLOAD))
    assert _blob_dir_names(cache) == [SHA]  # no staging file left behind


def test_partial_bytes_counts_resumable_partials(cache: ModelCache) -> None:
    card = _card("m", {"model.gguf": PAYLOAD})
    assert cache.partial_bytes(card) == 0
    _write(cache.blobs / f"{SHA}.incomplete", PAYLOAD[:1000])
    assert cache.partial_bytes(card) == 1000
    assert not cache.is_cached(card)


def test_has_file_checks_the_size(cache: ModelCache) -> None:
    _write(cache.blob_path(SHA), PAYLOAD[:10])
    entry = ModelFile(name="x", sha256=SHA, size=len(PAYLOAD))
    assert not cache.has_file(entry)
    assert cache.has_file(ModelFile(name="x", sha256=SHA))


def test_blob_sink_resumes_and_restarts(tmp_path: Path) -> None:
    path = tmp_path / "partial"
    sink = BlobSink(path, resume=True)
    sink.write(PAYLOAD[:100])
    sink.close()
    resumed = BlobSink(path, resume=True)
    assert resumed.offset == 100
    resumed.write(PAYLOAD[100:])
    resumed.close()
    assert resumed.hexdigest() == SHA
    fresh = BlobSink(path, resume=False)
    assert fresh.offset == 0
    fresh.write(b"abc")
    fresh.restart()
    fresh.write(PAYLOAD)
    fresh.close()
    assert fresh.hexdigest() == SHA and path.read_bytes() == PAYLOAD


def test_progress_protocol_is_optional(cache: ModelCache, tmp_path: Path) -> None:
    src = _write(tmp_path / "m", PAYLOAD)
    cache.ensure(_card("m", {"model.gguf": PAYLOAD}), [_local({"model.gguf": src})], NullProgress())


# --- two processes ---------------------------------------------------------------------------

FETCHER = textwrap.dedent(
    """
    import hashlib, os, sys, time
    from pathlib import Path

    from terminus.models.cache import ModelCache
    from terminus.models.card import ModelFile
    from terminus.models.progress import NullProgress

    home, payload_path, markers = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    payload = payload_path.read_bytes()

    class SlowSource:
        resumable = False

        def describe(self):
            return "slow"

        def provides(self, name):
            return True

        def fetch(self, file, sink, progress):
            with open(markers / "fetches", "a") as fh:
                fh.write(f"{os.getpid()}\\n")
            deadline = time.monotonic() + 20
            while len(list(markers.glob("started-*"))) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.3)  # the other process is now waiting on the lock
            for i in range(0, len(payload), 4096):
                sink.write(payload[i : i + 4096])

    entry = ModelFile(name="m.gguf", sha256=hashlib.sha256(payload).hexdigest(), size=len(payload))
    cache = ModelCache(home)
    (markers / f"started-{os.getpid()}").touch()
    path = cache.fetch_file(entry, [SlowSource()], NullProgress())
    assert path.read_bytes() == payload
    print("ok")
    """
)


def test_two_processes_fetch_one_blob_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    payload = _write(tmp_path / "payload", PAYLOAD)
    markers = tmp_path / "markers"
    markers.mkdir()
    script = _write(tmp_path / "fetch.py", FETCHER.encode())
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(home), str(payload), str(markers)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=60) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert out.strip() == "ok"
    assert len(list(markers.glob("started-*"))) == 2
    assert len((markers / "fetches").read_text().split()) == 1  # the source ran once
    cache = ModelCache(home)
    assert cache.blob_path(SHA).read_bytes() == PAYLOAD
    assert [n for n in _blob_dir_names(cache) if n != SHA] == []


def test_lock_timeout(tmp_path: Path) -> None:
    from filelock import FileLock

    from terminus.errors import CacheLockTimeoutError

    cache = ModelCache(tmp_path / "home", lock_timeout=0.2)
    cache.locks.mkdir(parents=True)
    holder = FileLock(str(cache.locks / f"{SHA}.lock"), thread_local=False)
    done = False

    def hold() -> None:
        with holder:
            while not done:
                time.sleep(0.01)

    import threading

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        time.sleep(0.05)
        with pytest.raises(CacheLockTimeoutError) as info:
            cache.fetch_file(
                ModelFile(name="m", sha256=SHA), [_FailingSource(AssertionError())], NullProgress()
            )
        assert isinstance(info.value, TimeoutError)
    finally:
        done = True
        thread.join()


def test_a_fetch_failure_gives_its_hint_once() -> None:
    from terminus.errors import TerminusError
    from terminus.models.cache import _summarize

    failures: list[TerminusError] = [
        SourceUnavailableError("peer 127.0.0.1:1 refused", hint="check the address"),
        SourceUnavailableError("mirror answered 404", hint="check the address"),
    ]
    error = _summarize(ModelFile(name="m.gguf", sha256=SHA, size=1), failures)
    assert error.one_line().count("check the address") == 1
    assert "refused" in error.message and "404" in error.message
