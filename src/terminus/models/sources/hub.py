"""Files from a Hugging Face Hub repository at a pinned commit.

The transfer is the HTTP source's (streamed through the hashing sink, resumed with
Range requests into ``blobs/<sha256>.incomplete``); this adds the Hub's addressing
(``HF_ENDPOINT``), its headers and token, and typed errors for what the Hub refuses.
"""

from __future__ import annotations

from terminus.errors import GatedModelError, OfflineError, RemoteModelNotFoundError
from terminus.models.card import HttpSource, HubSource, ModelFile
from terminus.models.hub import file_url, hub_endpoint, hub_headers, hub_offline
from terminus.models.progress import Progress
from terminus.models.sources.base import BlobSink
from terminus.models.sources.http import HttpFileSource, Response


class HubFileSource(HttpFileSource):
    def __init__(self, spec: HubSource, *, allow_download: bool = True) -> None:
        self._spec = spec
        self._endpoint = hub_endpoint()
        urls = {
            name: file_url(spec.repo, spec.revision, path, self._endpoint)
            for name, path in spec.files.items()
        }
        super().__init__(HttpSource(urls=urls), allow_download=allow_download)

    def describe(self) -> str:
        return f"hf: {self._spec.repo}@{self._spec.revision[:12]} ({self._endpoint})"

    def fetch(self, file: ModelFile, sink: BlobSink, progress: Progress) -> None:
        if not self._allow_download or hub_offline():
            raise OfflineError(
                f"{file.name} of hf://{self._spec.repo} is not cached and downloads are off",
                hint="unset TERMINUS_OFFLINE / HF_HUB_OFFLINE",
            )
        super().fetch(file, sink, progress)

    def _request_headers(self, url: str) -> dict[str, str]:
        return hub_headers(url, self._endpoint)

    def _check_status(
        self, resp: Response, url: str, file: ModelFile, sink: BlobSink, offset: int
    ) -> None:
        if resp.status_code in (401, 403):
            raise GatedModelError(
                f"hf://{self._spec.repo}: the Hub refused {file.name} (HTTP {resp.status_code})",
                hint=f"accept its terms on {self._endpoint}/{self._spec.repo} and set HF_TOKEN",
            )
        if resp.status_code == 404:
            raise RemoteModelNotFoundError(
                f"hf://{self._spec.repo}@{self._spec.revision[:12]} has no file "
                f"{self._spec.files[file.name]}"
            )
        super()._check_status(resp, url, file, sink, offset)
