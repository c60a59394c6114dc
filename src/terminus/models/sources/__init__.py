"""Where model bytes come from. Every source is checked against the card's sha256."""

from __future__ import annotations

from terminus.models.card import HttpSource, LocalSource, PackageSource, SourceSpec
from terminus.models.sources.base import BlobSink, Source


def make_source(spec: SourceSpec, *, allow_download: bool = True) -> Source:
    if isinstance(spec, PackageSource):
        from terminus.models.sources.package import PackageFileSource

        return PackageFileSource(spec, allow_download=allow_download)
    if isinstance(spec, LocalSource):
        from terminus.models.sources.local import LocalFileSource

        return LocalFileSource(spec)
    if isinstance(spec, HttpSource):
        from terminus.models.sources.http import HttpFileSource

        return HttpFileSource(spec, allow_download=allow_download)
    raise TypeError(f"unknown source spec {spec!r}")


__all__ = ["BlobSink", "Source", "make_source"]
