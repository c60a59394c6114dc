"""Files over HTTP(S): streamed, resumed with Range requests, retried when the link drops."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from terminus.errors import SourceUnavailableError
from terminus.models.card import HttpSource, ModelFile
from terminus.models.progress import Progress
from terminus.models.sources import http_direct
from terminus.models.sources.base import BlobSink, Buffer
from terminus.models.sources.http_direct import LinkError, uses_proxy

#: Statuses worth another try (the server or a proxy is busy, not wrong).
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=15.0)
_HF_HOSTS = ("huggingface.co", "hf.co")
_MAX_RESTARTS = 2


def _user_agent() -> str:
    from terminus._version import __version__

    return f"terminus/{__version__}"


def offline_mode() -> bool:
    """True when ``TERMINUS_OFFLINE`` asks for no network access."""
    return os.environ.get("TERMINUS_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def auth_headers(url: str) -> dict[str, str]:
    """``HF_TOKEN`` as a Bearer token, for Hugging Face hosts only.

    httpx drops ``Authorization`` when a redirect leaves the origin (HF's CDN).
    """
    host = (urlsplit(url).hostname or "").lower()
    token = os.environ.get("HF_TOKEN", "").strip()
    if token and any(host == h or host.endswith("." + h) for h in _HF_HOSTS):
        return {"Authorization": f"Bearer {token}"}
    return {}


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """``bytes 10-99/100`` -> (10, 100); ``bytes */100`` -> (None, 100)."""
    if not value or not value.startswith("bytes "):
        return None, None
    span, _, total = value[6:].partition("/")
    start_text = span.partition("-")[0].strip()
    start = int(start_text) if start_text.isdigit() else None
    return start, (int(total) if total.strip().isdigit() else None)


class _Headers(Protocol):
    def get(self, name: str, default: None = None, /) -> str | None: ...


class Response(Protocol):
    """What a download reads of a response: httpx's, or ``http_direct``'s."""

    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> _Headers: ...
    @property
    def num_bytes_downloaded(self) -> int: ...
    def iter_bytes(self) -> Iterator[Buffer]: ...


class _Retry(Exception):
    """This attempt failed in a way another attempt, resuming at ``sink.offset``, may fix."""


class _Restart(Exception):
    """The partial cannot be continued: it was dropped; ask again from byte zero."""


class HttpFileSource:
    resumable = True

    def __init__(
        self,
        spec: HttpSource,
        *,
        allow_download: bool = True,
        max_retries: int = 5,
        backoff: float = 0.2,
        max_backoff: float = 5.0,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
    ) -> None:
        self._urls = dict(spec.urls)
        self._allow_download = allow_download
        self._max_retries = max(0, max_retries)
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._timeout = timeout

    def describe(self) -> str:
        return "http: " + ", ".join(self._urls.values())

    def _request_headers(self, url: str) -> dict[str, str]:
        return auth_headers(url)

    def provides(self, file_name: str) -> bool:
        return file_name in self._urls

    def fetch(self, file: ModelFile, sink: BlobSink, progress: Progress) -> None:
        url = self._urls[file.name]
        if not self._allow_download or offline_mode():
            raise SourceUnavailableError(
                f"downloads are disabled; not fetching {file.name} from {url}",
                hint="unset TERMINUS_OFFLINE or allow downloads",
            )
        if urlsplit(url).scheme.lower() not in ("http", "https"):
            raise SourceUnavailableError(f"{file.name}: only http(s) URLs are supported, got {url}")
        failures = restarts = 0
        delay = self._backoff
        # Direct connections read the body with http_direct; a proxy needs httpx.
        client = (
            httpx.Client(
                follow_redirects=True, timeout=self._timeout, headers={"User-Agent": _user_agent()}
            )
            if uses_proxy(url)
            else None
        )
        try:
            while True:
                try:
                    self._attempt(client, url, file, sink, progress)
                    return
                except _Restart:
                    restarts += 1
                    if restarts <= _MAX_RESTARTS:
                        continue  # no bytes lost worth waiting for; ask again at once
                    reason = "the server does not honour Range requests consistently"
                except _Retry as exc:
                    reason = str(exc)
                failures += 1
                if failures > self._max_retries:
                    raise SourceUnavailableError(
                        f"download of {url} failed after {failures} attempt(s): {reason}",
                        hint="run the command again to resume",
                    )
                time.sleep(delay)
                delay = min(delay * 2, self._max_backoff)
        finally:
            if client is not None:
                client.close()
            progress.finish()

    def _attempt(
        self,
        client: httpx.Client | None,
        url: str,
        file: ModelFile,
        sink: BlobSink,
        progress: Progress,
    ) -> None:
        offset = sink.offset
        headers = {
            "Accept-Encoding": "identity",
            "User-Agent": _user_agent(),
            **self._request_headers(url),
        }
        if offset:
            headers["Range"] = f"bytes={offset}-"
        try:
            with self._get(client, url, headers) as resp:
                self._check_status(resp, url, file, sink, offset)
                if resp.status_code == 416:
                    return  # the partial already holds the whole file
                length_text = resp.headers.get("Content-Length") or ""
                length = int(length_text) if length_text.isdigit() else None
                total = file.size
                if total is None and length is not None:
                    total = sink.offset + length
                progress.start(file.name, total, initial=sink.offset)
                for chunk in resp.iter_bytes():
                    sink.write(chunk)  # the sink owns each chunk: it is never reused here
                    progress.advance(len(chunk))
                received = resp.num_bytes_downloaded
        except (httpx.TransportError, LinkError) as exc:
            raise _Retry(f"{type(exc).__name__}: {exc or 'connection failed'}") from exc
        except httpx.HTTPError as exc:
            raise SourceUnavailableError(f"{file.name} from {url}: {exc}") from exc
        if length is not None and received < length:
            raise _Retry(f"connection closed after {received} of {length} bytes")
        if file.size is not None and sink.offset < file.size:
            raise _Retry(f"body ended at {sink.offset} of {file.size} bytes")

    def _get(
        self, client: httpx.Client | None, url: str, headers: dict[str, str]
    ) -> AbstractContextManager[Response]:
        if client is None:
            timeout = self._timeout
            seconds = timeout.read if isinstance(timeout, httpx.Timeout) else timeout
            return http_direct.get(url, headers, timeout=seconds or DEFAULT_TIMEOUT.read or 60.0)
        return client.stream("GET", url, headers=headers)

    def _check_status(
        self, resp: Response, url: str, file: ModelFile, sink: BlobSink, offset: int
    ) -> None:
        status = resp.status_code
        if status == 206:
            start, _ = _content_range(resp.headers.get("Content-Range"))
            if start != offset:
                sink.restart()
                raise _Restart
        elif status == 200:
            if offset:
                sink.restart()  # the server ignored Range: take the full body from zero
        elif status == 416 and offset:
            _, total = _content_range(resp.headers.get("Content-Range"))
            expected = file.size if file.size is not None else total
            if offset != expected:
                sink.restart()
                raise _Restart
        elif status in RETRY_STATUSES:
            raise _Retry(f"HTTP {status} from {url}")
        else:
            raise SourceUnavailableError(f"HTTP {status} fetching {file.name} from {url}")
