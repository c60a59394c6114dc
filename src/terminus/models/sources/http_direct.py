"""One HTTP GET whose body is read straight into large buffers.

A model file is hundreds of megabytes; reading it through httpx costs a Python-level
parse per 64 KiB and holds the GIL for most of it, which halves a pull next to the
threads that write and hash it. Here the body goes from the socket into 4 MiB buffers
with ``readinto`` (C loops that release the GIL), each buffer handed on and never
reused. Redirects are followed as httpx does (the token is dropped when the origin
changes, the ``Range`` header is kept). Connections through a proxy stay on httpx,
which knows the proxy settings; see ``uses_proxy``.
"""

from __future__ import annotations

import http.client
import os
import ssl
import urllib.request
from collections.abc import Iterator
from functools import cache
from types import TracebackType
from urllib.parse import urljoin, urlsplit

from terminus.errors import SourceUnavailableError

#: The size of each buffer the body is read into (a hand-off to the writer and hasher).
BODY_BUFFER = 4 << 20
MAX_REDIRECTS = 10
_REDIRECTS = frozenset({301, 302, 303, 307, 308})

_LINK_FAILURES = (OSError, http.client.HTTPException)


class LinkError(Exception):
    """The link itself failed (refused, reset, timed out, cut mid-body): worth a retry."""


def uses_proxy(url: str) -> bool:
    """True when the environment routes ``url`` through a proxy (``HTTPS_PROXY`` & co)."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies()
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(parts.hostname or "")


@cache
def _tls_context() -> ssl.SSLContext:
    """The system's trust store when ``SSL_CERT_FILE``/``SSL_CERT_DIR`` say so, else
    certifi's, as httpx does."""
    if os.environ.get("SSL_CERT_FILE") or os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context()
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


class DirectResponse:
    """The final response after redirects; the body is read with ``iter_bytes``."""

    def __init__(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse) -> None:
        self._conn = conn
        self._resp = resp
        self.status_code = resp.status
        self.headers = resp.headers
        self.num_bytes_downloaded = 0

    def iter_bytes(self) -> Iterator[memoryview]:
        """The body in buffers of up to ``BODY_BUFFER`` bytes, each a fresh one."""
        while True:
            buffer = bytearray(BODY_BUFFER)
            try:
                n = self._resp.readinto(buffer)
            except _LINK_FAILURES as exc:
                raise LinkError(f"{type(exc).__name__}: {exc or 'connection failed'}") from exc
            if not n:
                return
            self.num_bytes_downloaded += n
            yield memoryview(buffer)[:n]

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> DirectResponse:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _connect(url: str, timeout: float) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https":
        return http.client.HTTPSConnection(
            host, parts.port, timeout=timeout, context=_tls_context()
        )
    if parts.scheme == "http":
        return http.client.HTTPConnection(host, parts.port, timeout=timeout)
    raise SourceUnavailableError(f"a redirect led to {url}: only http(s) is supported")


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port


def get(url: str, headers: dict[str, str], *, timeout: float) -> DirectResponse:
    """GET ``url``, following redirects; raises ``LinkError`` for a failed link."""
    headers = dict(headers)
    for _ in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        conn = _connect(url, timeout)
        try:
            conn.request("GET", target, headers=headers)
            resp = conn.getresponse()
        except _LINK_FAILURES as exc:
            conn.close()
            raise LinkError(f"{type(exc).__name__}: {exc or 'connection failed'}") from exc
        except BaseException:
            conn.close()
            raise
        location = resp.headers.get("Location")
        if resp.status not in _REDIRECTS or not location:
            return DirectResponse(conn, resp)
        conn.close()
        next_url = urljoin(url, location)
        if _origin(next_url) != _origin(url):
            headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        url = next_url
    raise SourceUnavailableError(f"more than {MAX_REDIRECTS} redirects fetching {url}")
