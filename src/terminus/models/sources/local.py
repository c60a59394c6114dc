"""Files already on this machine (a user's own GGUF, a mounted share)."""

from __future__ import annotations

from pathlib import Path

from terminus.errors import SourceUnavailableError
from terminus.models.card import LocalSource, ModelFile
from terminus.models.progress import Progress
from terminus.models.sources.base import BlobSink, copy_file_into


class LocalFileSource:
    resumable = False

    def __init__(self, spec: LocalSource) -> None:
        self._paths = {name: Path(p).expanduser() for name, p in spec.paths.items()}

    def describe(self) -> str:
        return "local: " + ", ".join(str(p) for p in self._paths.values())

    def provides(self, file_name: str) -> bool:
        return file_name in self._paths

    def fetch(self, file: ModelFile, sink: BlobSink, progress: Progress) -> None:
        path = self._paths[file.name]
        if not path.is_file():
            raise SourceUnavailableError(f"local file {path} does not exist")
        progress.start(f"copying {file.name}", path.stat().st_size)
        try:
            copy_file_into(path, sink, progress)
        finally:
            progress.finish()
