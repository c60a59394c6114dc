"""Peers as a model source for the cache: fetch with libtorrent, then verify-and-rename."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from terminus.errors import InvalidParameterError, SourceUnavailableError
from terminus.models.card import ModelFile, PeerSource
from terminus.models.progress import Progress
from terminus.models.sources.base import BlobSink, StagedFile, copy_file_into
from terminus.p2p.fetch import FetchReport, fetch_blobs, staging_dir
from terminus.p2p.reference import ModelRef, parse_reference
from terminus.paths import terminus_home


class PeerFileSource:
    """Delivers a model's files from the peers named in its references.

    The whole torrent is fetched once into a private staging folder (resumable), each
    file hashed as its pieces arrive; a blob becomes visible in the cache only when that
    sha256 matches the card.
    """

    resumable = False  # the staging folder, not the sink, holds the resumable state

    def __init__(
        self,
        refs: list[ModelRef],
        *,
        home: Path,
        allow_download: bool = True,
        public: bool | None = None,
    ) -> None:
        self.refs = refs
        self.home = home
        self.allow_download = allow_download
        self.public = public
        self.last_report: FetchReport | None = None
        self._used: set[ModelRef] = set()

    @classmethod
    def from_spec(
        cls, spec: PeerSource, *, allow_download: bool = True, home: Path | None = None
    ) -> PeerFileSource:
        return cls(
            [parse_reference(r) for r in spec.refs],
            home=home or terminus_home(),
            allow_download=allow_download,
        )

    def describe(self) -> str:
        peers = sorted({p for r in self.refs for p in (*r.peers, *r.web_seeds)})
        return "peers: " + (", ".join(peers) or "none")

    def provides(self, file_name: str) -> bool:
        return any(f.name == file_name for r in self.refs for f in r.files)

    def fetch_to_path(self, file: ModelFile, progress: Progress) -> Path | StagedFile:
        """Download (or resume) the torrent and hand the staged file to the cache.

        The file sits in a folder of its own under the Terminus home, on the cache's
        filesystem. Its sha256 was computed as its pieces arrived, and it was synced: the
        cache compares that digest with the card and renames the file into place.
        """
        staged = self._staged(file, progress)
        digest = self.last_report.digests.get(file.sha256) if self.last_report else None
        if digest is None:
            return staged  # the cache hashes it
        return StagedFile(staged, digest.sha256, digest.size)

    def fetch(self, file: ModelFile, sink: BlobSink, progress: Progress) -> None:
        """The plain Source interface: stream the staged file through the cache's sink."""
        staged = self._staged(file, progress)
        progress.start(f"verifying {file.name}", staged.stat().st_size)
        try:
            copy_file_into(staged, sink, progress)
        finally:
            progress.finish()
        staged.unlink(missing_ok=True)

    def _staged(self, file: ModelFile, progress: Progress) -> Path:
        if not self.allow_download:
            raise SourceUnavailableError(
                f"downloads are disabled; not fetching {file.name} from peers"
            )
        ref = self._ref_for(file)
        staged = self.last_report.paths.get(file.sha256) if self.last_report else None
        if staged is None or not staged.exists():
            self.last_report = fetch_blobs(ref, self.home, progress=progress, public=self.public)
            staged = self.last_report.paths[file.sha256]
        self._used.add(ref)
        return staged

    def close(self) -> None:
        """Drop staging folders whose files all reached the cache (their resume data too)."""
        for ref in self._used:
            folder = staging_dir(self.home, ref)
            if not any(p.name in {f.sha256 for f in ref.files} for p in folder.rglob("*")):
                shutil.rmtree(folder, ignore_errors=True)

    def _ref_for(self, file: ModelFile) -> ModelRef:
        for ref in self.refs:
            for entry in ref.files:
                if entry.name == file.name:
                    if entry.sha256 != file.sha256:
                        raise InvalidParameterError(
                            f"the peer reference pins {file.name} to sha256 "
                            f"{entry.sha256[:16]}…, the card to {file.sha256[:16]}…"
                        )
                    return ref
        raise SourceUnavailableError(f"no peer reference lists {file.name}")


def make_peer_source(spec: Any, *, allow_download: bool = True, home: Path | None = None) -> Any:
    """Entry point for ``terminus.sources``: the cache finds peers through it."""
    return PeerFileSource.from_spec(spec, allow_download=allow_download, home=home)
