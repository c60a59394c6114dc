"""The content-addressed model cache.

Layout under the Terminus home::

    blobs/<sha256>              verified bytes, read-only
    stamps/<sha256>             the blob's stat right after its hash last matched
    blobs/<sha256>.incomplete   bytes being fetched (resumable); never used for inference
    locks/<sha256>.lock         one fetcher per blob across processes
    models/<id>/<file name>     relative symlinks into blobs/, so multi-file models
                                (whisper folders, voices) see their usual file names

A blob appears under its hash only by ``os.replace`` after the hash matched, so
nothing unverified is ever visible, whatever kills the process and when. Before a
cached blob is used, its stat is compared with its verification stamp; a blob that
changed since (or has no stamp) is hashed again, and one that no longer matches is
removed and reported, never loaded.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from terminus.errors import (
    CacheLockTimeoutError,
    ChecksumMismatchError,
    ModelNotCachedError,
    SourceUnavailableError,
    TerminusError,
)
from terminus.models.card import ModelCard, ModelFile
from terminus.models.progress import NullProgress, Progress
from terminus.models.sources.base import CHUNK, BlobSink, Source, StagedFile
from terminus.models.stamps import Stamp, StampStore

LOCK_TIMEOUT_S = 3600.0

log = logging.getLogger("terminus.models")


@dataclass(frozen=True)
class ModelFiles:
    """Where a cached model's files are, by the names its card gives them."""

    root: Path
    paths: dict[str, Path]

    @property
    def main(self) -> Path:
        return next(iter(self.paths.values()))


@dataclass(frozen=True)
class VerifyResult:
    name: str
    sha256: str
    ok: bool
    detail: str


class ModelCache:
    def __init__(self, root: Path, *, lock_timeout: float = LOCK_TIMEOUT_S) -> None:
        self.root = root
        self.blobs = root / "blobs"
        self.locks = root / "locks"
        self.models = root / "models"
        self.stamps = StampStore(root / "stamps")
        self._lock_timeout = lock_timeout

    # -- queries -------------------------------------------------------------

    def blob_path(self, sha256: str) -> Path:
        return self.blobs / sha256

    def has_file(self, file: ModelFile) -> bool:
        path = self.blob_path(file.sha256)
        if not path.is_file():
            return False
        return file.size is None or path.stat().st_size == file.size

    def is_cached(self, card: ModelCard) -> bool:
        return all(self.has_file(f) for f in card.files)

    def partial_bytes(self, card: ModelCard) -> int:
        """Bytes already fetched towards files not yet complete (resumable downloads)."""
        total = 0
        for f in card.files:
            partial = self.blobs / f"{f.sha256}.incomplete"
            if partial.exists():
                total += partial.stat().st_size
        return total

    def files(self, card: ModelCard, progress: Progress | None = None) -> ModelFiles:
        """A cached model's files, each checked against its sha256 before it is handed out.

        Raises ``ChecksumMismatchError`` (after removing the blob) when a file's bytes
        changed since they were verified.
        """
        if not self.is_cached(card):
            raise ModelNotCachedError(
                f"model {card.id} is not in the cache", hint=f"terminus models pull {card.id}"
            )
        for file in card.files:
            self.check_file(file, progress, model_id=card.id)
        return self._link_model(card)

    def check_file(
        self, file: ModelFile, progress: Progress | None = None, *, model_id: str = ""
    ) -> None:
        """Make sure a cached blob still holds the bytes its sha256 names.

        The stat matching the blob's stamp is enough (microseconds); otherwise the blob is
        hashed again (seconds for a large model) and the stamp renewed. A blob that fails
        is removed, so nothing can load it, and ``ChecksumMismatchError`` is raised.
        """
        path = self.blob_path(file.sha256)
        if self.stamps.matches(file.sha256, path):
            return
        with self._lock(file.sha256):
            if self.stamps.matches(file.sha256, path):  # another process verified it meanwhile
                return
            if not path.is_file():
                raise ModelNotCachedError(
                    f"{file.name} is not in the cache",
                    hint=f"terminus models pull {model_id}" if model_id else None,
                )
            before = Stamp.of(path)
            digest, size = _hash_file_progress(path, progress or NullProgress(), file.name)
            if digest == file.sha256 and (file.size is None or size == file.size):
                if Stamp.of(path) == before:  # unchanged while it was being hashed
                    self.stamps.record(file.sha256, before)
                return
            self._discard_blob(file.sha256)
        raise ChecksumMismatchError(
            f"cached {file.name} is corrupt: got sha256 {digest[:16]}… ({size} bytes), "
            f"expected {file.sha256[:16]}…; the blob was removed and is never loaded",
            hint=f"terminus models pull {model_id}" if model_id else None,
        )

    # -- fetching ------------------------------------------------------------

    def ensure(
        self, card: ModelCard, sources: Iterable[Source], progress: Progress | None = None
    ) -> ModelFiles:
        """Fetch every missing file from the first source that delivers verified bytes."""
        progress = progress or NullProgress()
        source_list = list(sources)
        for file in card.files:
            if self.has_file(file):
                try:
                    self.check_file(file, progress, model_id=card.id)
                    continue
                except ChecksumMismatchError as exc:
                    # Sources are at hand: fetch verified bytes again instead of failing.
                    log.warning("%s; fetching it again", exc.message)
            self.fetch_file(file, source_list, progress)
        return self._link_model(card)

    def fetch_file(self, file: ModelFile, sources: list[Source], progress: Progress) -> Path:
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.locks.mkdir(parents=True, exist_ok=True)
        final = self.blob_path(file.sha256)
        with self._lock(file.sha256):
            if self.has_file(file):  # another process fetched it while we waited
                return final
            self._sweep_stale_staging(file.sha256)
            failures: list[TerminusError] = []
            for source in sources:
                if not source.provides(file.name):
                    continue
                try:
                    return self._fetch_from(source, file, progress)
                except (ChecksumMismatchError, SourceUnavailableError) as exc:
                    failures.append(exc)
            raise _summarize(file, failures)

    def _fetch_from(self, source: Source, file: ModelFile, progress: Progress) -> Path:
        # Sources that download into their own staging file (peers) hand over the path:
        # it is hashed in place and renamed, instead of being copied through a sink.
        fetch_to_path = getattr(source, "fetch_to_path", None)
        if fetch_to_path is not None:
            return self._adopt(fetch_to_path(file, progress), file, source, progress)
        # Resumable sources share one partial file across attempts and processes;
        # the others stage privately so they never clobber a resumable partial.
        partial = (
            self.blobs / f"{file.sha256}.incomplete"
            if source.resumable
            else self.blobs / f"{file.sha256}.{os.getpid()}.staging"
        )
        resumed = partial.exists() and partial.stat().st_size > 0
        try:
            return self._fetch_once(source, file, progress, partial)
        except ChecksumMismatchError:
            if not resumed:
                raise
            # The bad bytes may be a stale partial rather than the source: retry from zero.
            return self._fetch_once(source, file, progress, partial)

    def _fetch_once(
        self, source: Source, file: ModelFile, progress: Progress, partial: Path
    ) -> Path:
        sink = BlobSink(partial, resume=source.resumable)
        try:
            source.fetch(file, sink, progress)
        except BaseException:
            sink.close()
            if not source.resumable or sink.offset == 0:
                partial.unlink(missing_ok=True)
            raise
        sink.close()
        digest = sink.hexdigest()
        size_ok = file.size is None or sink.offset == file.size
        if digest != file.sha256 or not size_ok:
            partial.unlink(missing_ok=True)
            raise ChecksumMismatchError(
                f"{file.name} from {source.describe()}: got sha256 {digest[:16]}… "
                f"({sink.offset} bytes), expected {file.sha256[:16]}…"
                + (f" ({file.size} bytes)" if file.size is not None else "")
            )
        partial.chmod(0o444)
        os.replace(partial, self.blob_path(file.sha256))
        _fsync_dir(self.blobs)
        self._stamp_verified(file.sha256)
        return self.blob_path(file.sha256)

    def _adopt(
        self, staged: Path | StagedFile, file: ModelFile, source: Source, progress: Progress
    ) -> Path:
        """Verify a file a source staged on this filesystem, then rename it into place.

        A ``StagedFile`` was hashed and synced by its source as it was written: its digest
        and size (checked against the file on disk) are compared, and it is not read again.
        """
        if isinstance(staged, StagedFile):
            digest, size = staged.sha256, staged.size
            if staged.path.stat().st_size != size:
                digest = "size-changed"  # written to after it was hashed: never adopted
            staged = staged.path
        else:
            digest, size = _hash_and_sync(staged, progress, file.name)
        if digest != file.sha256 or (file.size is not None and size != file.size):
            staged.unlink(missing_ok=True)
            raise ChecksumMismatchError(
                f"{file.name} from {source.describe()}: got sha256 {digest[:16]}… "
                f"({size} bytes), expected {file.sha256[:16]}…"
            )
        staged.chmod(0o444)
        try:
            os.replace(staged, self.blob_path(file.sha256))
        except OSError:  # another filesystem: copy, then rename within the cache
            copy = self.blobs / f"{file.sha256}.{os.getpid()}.staging"
            shutil.copyfile(staged, copy)
            copy.chmod(0o444)
            os.replace(copy, self.blob_path(file.sha256))
            staged.unlink(missing_ok=True)
        _fsync_dir(self.blobs)
        self._stamp_verified(file.sha256)
        return self.blob_path(file.sha256)

    def import_path(
        self, path: Path, progress: Progress | None = None, *, name: str | None = None
    ) -> ModelFile:
        """Copy a user's file into the cache, hashing it on the way; returns its entry.

        ``name`` is the file's name in the card (default: a sanitised ``path.name``).
        """
        progress = progress or NullProgress()
        name = name or _safe_file_name(path.name)
        self.blobs.mkdir(parents=True, exist_ok=True)
        # A private staging name: card names may hold folders ("unet/model.safetensors")
        # and two threads may import the same name at once.
        staging = self.blobs / f"import-{os.getpid()}-{uuid.uuid4().hex}.incomplete"
        sink = BlobSink(staging, resume=False)
        progress.start(f"importing {path.name}", path.stat().st_size)
        try:
            with path.open("rb") as fh:
                while block := fh.read(CHUNK):
                    sink.write(block)
                    progress.advance(len(block))
        except BaseException:
            sink.close()
            staging.unlink(missing_ok=True)
            raise
        finally:
            progress.finish()
        sink.close()
        entry = ModelFile(name=name, sha256=sink.hexdigest(), size=sink.offset)
        with self._lock(entry.sha256):
            if self.has_file(entry):
                staging.unlink()
            else:
                staging.chmod(0o444)
                os.replace(staging, self.blob_path(entry.sha256))
                self._stamp_verified(entry.sha256)
        return entry

    # -- maintenance ---------------------------------------------------------

    def verify(self, card: ModelCard) -> list[VerifyResult]:
        """Re-hash every blob of a card; a corrupt blob is deleted so it is never used."""
        results = []
        for file in card.files:
            path = self.blob_path(file.sha256)
            if not path.is_file():
                results.append(VerifyResult(file.name, file.sha256, False, "missing"))
                continue
            before = Stamp.of(path)
            digest = _hash_file(path)
            if digest == file.sha256:
                if Stamp.of(path) == before:
                    self.stamps.record(file.sha256, before)
                results.append(VerifyResult(file.name, file.sha256, True, "ok"))
            else:
                self._discard_blob(file.sha256)
                results.append(
                    VerifyResult(
                        file.name, file.sha256, False, f"corrupt (sha256 {digest[:16]}…), removed"
                    )
                )
        return results

    def remove(self, card: ModelCard, keep_shared_with: Iterable[ModelCard] = ()) -> int:
        """Remove a model; blobs another cached card still uses are kept. Returns bytes freed."""
        still_used = {
            f.sha256
            for other in keep_shared_with
            if other.id != card.id and self.is_cached(other)
            for f in other.files
        }
        freed = 0
        for file in card.files:
            for candidate in (
                self.blob_path(file.sha256),
                self.blobs / f"{file.sha256}.incomplete",
            ):
                if candidate.exists() and file.sha256 not in still_used:
                    freed += candidate.stat().st_size
                    candidate.chmod(0o644)
                    candidate.unlink()
            if file.sha256 not in still_used:
                self.stamps.forget(file.sha256)
        shutil.rmtree(self.models / card.id, ignore_errors=True)
        return freed

    # -- internals -----------------------------------------------------------

    def _stamp_verified(self, sha256: str) -> None:
        """Record the stat of a blob whose hash was just checked (called after its rename)."""
        self.stamps.record(sha256, Stamp.of(self.blob_path(sha256)))

    def _discard_blob(self, sha256: str) -> None:
        self.stamps.forget(sha256)
        path = self.blob_path(sha256)
        try:
            path.chmod(0o644)
            path.unlink()
        except FileNotFoundError:
            pass

    def _sweep_stale_staging(self, sha256: str) -> None:
        """Drop private staging files left by fetchers that were killed (we hold the lock)."""
        for path in self.blobs.glob(f"{sha256}.*.staging"):
            pid = path.name.split(".")[-2]
            if pid.isdigit() and not _pid_alive(int(pid)):
                path.unlink(missing_ok=True)

    def _lock(self, sha256: str) -> _BlobLock:
        self.locks.mkdir(parents=True, exist_ok=True)
        return _BlobLock(FileLock(str(self.locks / f"{sha256}.lock")), self._lock_timeout)

    def _link_model(self, card: ModelCard) -> ModelFiles:
        folder = self.models / card.id
        paths: dict[str, Path] = {}
        for file in card.files:
            link = folder / file.name
            link.parent.mkdir(parents=True, exist_ok=True)
            target = Path(os.path.relpath(self.blob_path(file.sha256), link.parent))
            if not (link.is_symlink() and Path(os.readlink(link)) == target):
                tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
                tmp.unlink(missing_ok=True)
                tmp.symlink_to(target)
                os.replace(tmp, link)
            paths[file.name] = link
        return ModelFiles(root=folder, paths=paths)


class _BlobLock:
    def __init__(self, lock: FileLock, timeout: float) -> None:
        self._lock = lock
        self._timeout = timeout

    def __enter__(self) -> None:
        try:
            self._lock.acquire(timeout=self._timeout)
        except Timeout as exc:
            raise CacheLockTimeoutError(
                f"another process has held {self._lock.lock_file} for {self._timeout:.0f}s"
            ) from exc

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


def _safe_file_name(name: str) -> str:
    """A file name a card accepts: letters, digits, '.', '_' and '-'."""
    import re

    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")
    return cleaned if cleaned not in ("", ".", "..") else "model"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_dir(path: Path) -> None:
    """Make a rename durable: a crash right after must not lose the new blob."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _hash_and_sync(path: Path, progress: Progress, name: str) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    progress.start(f"verifying {name}", path.stat().st_size)
    try:
        with path.open("rb") as fh:
            while block := fh.read(CHUNK):
                digest.update(block)
                size += len(block)
                progress.advance(len(block))
            os.fsync(fh.fileno())
    finally:
        progress.finish()
    return digest.hexdigest(), size


def _hash_file(path: Path) -> str:
    return _hash_file_progress(path, NullProgress(), path.name)[0]


def _hash_file_progress(path: Path, progress: Progress, name: str) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    progress.start(f"verifying {name}", path.stat().st_size)
    try:
        with path.open("rb") as fh:
            while block := fh.read(CHUNK):
                digest.update(block)
                size += len(block)
                progress.advance(len(block))
    finally:
        progress.finish()
    return digest.hexdigest(), size


def _summarize(file: ModelFile, failures: list[TerminusError]) -> TerminusError:
    if not failures:
        return SourceUnavailableError(f"no source provides {file.name}")
    detail = "; ".join(" ".join(f.message.split()) for f in failures)
    mismatch = any(isinstance(f, ChecksumMismatchError) for f in failures)
    hint = next((f.hint for f in failures if f.hint), None)  # said once, after the details
    if mismatch:
        return ChecksumMismatchError(
            f"no source delivered a verified {file.name}: {detail}", hint=hint
        )
    return SourceUnavailableError(f"could not fetch {file.name}: {detail}", hint=hint)
