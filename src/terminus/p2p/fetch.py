"""Download a model's blobs from peers (and HTTP web seeds) into a private staging folder.

libtorrent verifies every block against the v2 Merkle tree before writing it and
bans peers that send bad data; the download resumes after any kill because the
staging folder keeps the metadata, resume data and the pieces already verified.
Pieces come in order, so the whole-file sha256 the cache checks is computed while they
arrive (``stream_hash``), reading each piece once after it was verified and written; the
cache compares it with the card before the file becomes visible (``PeerFileSource``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from terminus.errors import SourceUnavailableError
from terminus.models.progress import NullProgress, Progress
from terminus.p2p.reference import ModelRef, parse_address
from terminus.p2p.stream_hash import Digest, InOrderHasher, verified_prefix
from terminus.p2p.torrent import TUNED_SETTINGS, libtorrent, make_session, public_default

log = logging.getLogger(__name__)

STALL_TIMEOUT_S = 60.0
RESUME_EVERY_S = 1.0


@dataclass
class FetchReport:
    """What happened during one download (peers banned, hash failures…)."""

    paths: dict[str, Path]
    hash_failures: int = 0
    resumed_bytes: int = 0  # verified bytes found in the staging folder at start
    banned_peers: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: sha256 the file should have -> what its bytes hashed to as they arrived
    digests: dict[str, Digest] = field(default_factory=dict)


def staging_dir(home: Path, ref: ModelRef) -> Path:
    return home / "p2p" / "staging" / ref.info_hash


def fetch_blobs(
    ref: ModelRef,
    home: Path,
    *,
    progress: Progress | None = None,
    stall_timeout: float = STALL_TIMEOUT_S,
    listen: str = "0.0.0.0:0",
    public: bool | None = None,
) -> FetchReport:
    """Fetch every file of ``ref`` into its staging folder; returns sha256 -> path."""
    lt = libtorrent()
    progress = progress or NullProgress()
    folder = staging_dir(home, ref)
    folder.mkdir(parents=True, exist_ok=True)
    if not ref.peers and not ref.web_seeds and not (public_default() if public is None else public):
        raise SourceUnavailableError(f"reference for {ref.model_id} names no peer or mirror")
    session = make_session(listen, public=public)
    started = time.monotonic()
    report = FetchReport(paths={})
    hashing = _Hashing(folder)
    handle = None
    try:
        handle = session.add_torrent(_add_params(lt, ref, folder))
        if any(_staged_path(folder, f.sha256) for f in ref.files):
            # Resume data can lag behind a kill -9; what reached the disk is rechecked
            # piece by piece against the Merkle tree, so no verified byte is fetched twice.
            handle.force_recheck()
        for peer in ref.peers:
            handle.connect_peer(parse_address(peer))
        # Added paused, the torrent connects to the peers it knows when resumed (libtorrent's
        # connect boost); otherwise the first connection waits ~100 ms for the session's tick.
        handle.resume()
        report.resumed_bytes = _checked_bytes(handle)
        _wait_until_done(lt, session, handle, ref, folder, progress, report, stall_timeout, hashing)
        _flush(lt, session, handle, folder, report)
        digests = hashing.finish(handle)
    finally:
        hashing.cancel()
        progress.finish()
        session.pause()
        owner = [session]
        del session, handle  # the closing thread must hold the last reference
        _dispose(owner)
    report.seconds = time.monotonic() - started
    for file in ref.files:
        path = _staged_path(folder, file.sha256)
        if path is None:
            raise SourceUnavailableError(f"{file.name} is not in the torrent of {ref.model_id}")
        report.paths[file.sha256] = path
        digest = digests.get(path)
        if digest is not None and digest.sha256 == file.sha256:
            report.digests[file.sha256] = digest  # else the cache hashes the file itself
    return report


class _Hashing:
    """The in-order hasher, started once the torrent's metadata is known."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._hasher: InOrderHasher | None = None
        self._prefix = 0

    def update(self, handle: Any, status: Any) -> None:
        if not status.has_metadata:
            return
        if self._hasher is None:
            queued = int(TUNED_SETTINGS["max_queued_disk_bytes"])
            self._hasher = InOrderHasher(self._folder, handle.torrent_file(), queued)
        self._prefix = verified_prefix(status.pieces, self._prefix)
        self._hasher.advance(self._prefix)

    def finish(self, handle: Any) -> dict[Path, Digest]:
        """After the flush: hash what is left and sync the files once."""
        if self._hasher is None:  # complete before the loop saw metadata
            self._hasher = InOrderHasher(self._folder, handle.torrent_file())
        hasher, self._hasher = self._hasher, None
        digests = hasher.finish()
        for path in digests:
            with path.open("rb") as fh:  # libtorrent wrote it; sync once before the rename
                os.fsync(fh.fileno())
        return digests

    def cancel(self) -> None:
        if self._hasher is not None:
            self._hasher.cancel()
            self._hasher = None


def _add_params(lt: Any, ref: ModelRef, folder: Path) -> Any:
    resume = folder / "resume.dat"
    params = None
    if resume.exists():
        try:
            params = lt.read_resume_data(resume.read_bytes())
        except Exception:  # a resume file cut short by a kill: rechecking is enough
            params = None
    if params is None:
        params = lt.parse_magnet_uri(f"magnet:?xt=urn:btmh:1220{ref.info_hash}")
    params.save_path = str(folder)
    params.url_seeds = list(ref.web_seeds)
    # In order, so the whole-file hash follows the download instead of re-reading it after.
    params.flags |= lt.torrent_flags.sequential_download
    params.flags |= lt.torrent_flags.paused
    params.flags &= ~lt.torrent_flags.auto_managed
    return params


def _wait_until_done(
    lt: Any,
    session: Any,
    handle: Any,
    ref: ModelRef,
    folder: Path,
    progress: Progress,
    report: FetchReport,
    stall_timeout: float,
    hashing: _Hashing,
) -> None:
    total = sum(f.size or 0 for f in ref.files)
    progress.start(f"{ref.model_id} from peers", total or None)
    shown = 0
    last_progress = last_resume = time.monotonic()
    while True:
        status = handle.status()
        hashing.update(handle, status)
        done = int(status.total_wanted_done)
        if done > shown:
            progress.advance(done - shown)
            shown = done
            last_progress = time.monotonic()
        if status.is_seeding or (status.has_metadata and status.state == status.seeding):
            return
        for alert in session.pop_alerts():
            _on_alert(lt, alert, handle, folder, report)
        now = time.monotonic()
        if now - last_resume > RESUME_EVERY_S and status.has_metadata:
            handle.save_resume_data(lt.save_resume_flags_t.save_info_dict)
            last_resume = now
        if now - last_progress > stall_timeout:
            raise SourceUnavailableError(
                f"no peer sent data for {ref.model_id} in {stall_timeout:.0f}s "
                f"({status.num_peers} connected)",
                hint="check the peer addresses; run the command again to resume",
            )
        session.wait_for_alert(20)


def _dispose(owner: list[Any]) -> None:
    """Tear the session down on another thread: its destructor blocks for ~0.1-0.2 s.
    ``owner`` must hold the only reference left, or the destructor runs wherever the
    last one is dropped (before, that was the caller, 0.1 s of every pull)."""
    threading.Thread(target=owner.clear, name="terminus-session-close", daemon=True).start()


def _checked_bytes(handle: Any) -> int:
    """Verified bytes already staged (pieces of an interrupted download are rechecked first)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = handle.status()
        if status.state not in (status.checking_files, status.checking_resume_data):
            return int(status.total_wanted_done)
        time.sleep(0.05)
    return 0


def _on_alert(lt: Any, alert: Any, handle: Any, folder: Path, report: FetchReport) -> None:
    if isinstance(alert, lt.metadata_received_alert):
        # Resume data carries the info dict from now on: a restart needs no peer for it.
        handle.save_resume_data(lt.save_resume_flags_t.save_info_dict)
    elif isinstance(alert, lt.save_resume_data_alert):
        _write_atomic(folder / "resume.dat", lt.write_resume_data_buf(alert.params))
    elif isinstance(alert, lt.hash_failed_alert):
        report.hash_failures += 1
        log.warning(
            "piece %d failed its hash check; the peer that sent it is dropped", alert.piece_index
        )
    elif alert.category() & lt.alert.category_t.error_notification:
        log.warning("%s", alert.message())
    elif isinstance(alert, lt.peer_ban_alert | lt.peer_blocked_alert):
        report.banned_peers.append(f"{alert.endpoint[0]}:{alert.endpoint[1]}")
        log.warning("banned peer %s for sending bad data", alert.endpoint)


def _flush(lt: Any, session: Any, handle: Any, folder: Path, report: FetchReport) -> None:
    """Wait until every verified byte is written, and keep the resume data."""
    handle.save_resume_data(lt.save_resume_flags_t.flush_disk_cache)
    deadline = time.monotonic() + 30
    saved = False
    while not saved and time.monotonic() < deadline:
        session.wait_for_alert(200)
        for alert in session.pop_alerts():  # the whole batch, not up to the resume data
            if isinstance(alert, lt.save_resume_data_alert):
                _write_atomic(folder / "resume.dat", lt.write_resume_data_buf(alert.params))
                saved = True
            elif isinstance(alert, lt.save_resume_data_failed_alert):
                saved = True
            else:
                _on_alert(lt, alert, handle, folder, report)


def _staged_path(folder: Path, sha256: str) -> Path | None:
    for candidate in (folder / sha256, folder / "blobs" / sha256):
        if candidate.is_file():
            return candidate
    return None


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
