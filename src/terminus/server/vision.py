"""Image URLs in chat requests: fetched only when the server was started to allow it.

``terminus serve --allow-image-urls`` lets ``image_url`` parts name ``http(s)`` URLs;
by default only ``data:`` URLs (and Ollama's base64 ``images``) are read, so a request
cannot make the server reach out to the network.
"""

from __future__ import annotations

import httpx

from terminus.errors import ChatImageError
from terminus.server.settings import ServerSettings
from terminus.types.vision import MAX_IMAGE_BYTES, Fetch

FETCH_TIMEOUT_S = 15.0


def image_fetcher(settings: ServerSettings) -> Fetch | None:
    return fetch_image_url if settings.allow_image_urls else None


def fetch_image_url(url: str) -> bytes:
    """The bytes at an http(s) URL, at most ``MAX_IMAGE_BYTES`` of them."""
    try:
        with httpx.stream("GET", url, timeout=FETCH_TIMEOUT_S, follow_redirects=True) as reply:
            if reply.status_code != 200:
                raise ChatImageError(f"fetching {url} answered HTTP {reply.status_code}")
            data = bytearray()
            for chunk in reply.iter_bytes():
                data += chunk
                if len(data) > MAX_IMAGE_BYTES:
                    raise ChatImageError(f"{url} is over {MAX_IMAGE_BYTES >> 20} MiB")
            return bytes(data)
    except httpx.HTTPError as exc:
        raise ChatImageError(f"cannot fetch {url}: {exc}") from exc
