"""The web app: static files shipped in the package, served at ``/`` and ``/ui/``.

The page is plain ES modules (no build step, no CDN: it works offline) that talk only
to the public HTTP APIs, so nothing it does is out of reach of other clients. The page
and its assets are not secret and are served without an API key; every API call the
page makes sends the key the user typed in (kept in the browser's localStorage).
"""

from __future__ import annotations

import hashlib
import html
from functools import cache
from importlib import resources

from fastapi import APIRouter, Request
from starlette.responses import Response

#: The files of the app, and their media types (nothing else under /ui/ is served).
ASSETS = {
    "app.js": "text/javascript",
    "api.js": "text/javascript",
    "chat.js": "text/javascript",
    "documents.js": "text/javascript",
    "evals.js": "text/javascript",
    "markdown.js": "text/javascript",
    "media.js": "text/javascript",
    "models.js": "text/javascript",
    "peers.js": "text/javascript",
    "style.css": "text/css",
    "favicon.svg": "image/svg+xml",
}
#: Served without an API key: the page shell holds no data.
OPEN_PATHS = frozenset({"/", *(f"/ui/{name}" for name in ASSETS)})

#: Only this origin's scripts and styles; no inline script; no framing by other sites.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data: blob:; media-src 'self' blob: data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@cache
def _asset(name: str) -> bytes:
    return (resources.files("terminus.server") / "ui" / name).read_bytes()


def _respond(request: Request, body: bytes, media_type: str) -> Response:
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {**SECURITY_HEADERS, "ETag": etag, "Cache-Control": "no-cache"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


def add_webapp_routes(router: APIRouter) -> None:
    @router.get("/", include_in_schema=False)
    async def index(request: Request) -> Response:
        from terminus import __version__

        page = _asset("index.html").replace(b"{{VERSION}}", html.escape(__version__).encode())
        return _respond(request, page, "text/html; charset=utf-8")

    @router.get("/ui/{name}", include_in_schema=False)
    async def asset(name: str, request: Request) -> Response:
        media_type = ASSETS.get(name)
        if media_type is None:
            return Response(
                b'{"error":{"message":"no such file","type":"invalid_request_error",'
                b'"param":null,"code":"not_found"}}',
                status_code=404,
                media_type="application/json",
            )
        return _respond(request, _asset(name), media_type)
