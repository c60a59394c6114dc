"""Keep web pages away from the server: Host allow-list, Origin check, JSON-only bodies.

A keyless server on loopback trusts whoever can reach it, and a web page can reach
it through the visitor's browser in two ways this middleware closes:

- **DNS rebinding**: a page on ``attacker.example`` rebinds that name to 127.0.0.1
  and calls the server as same-origin. Its requests carry ``Host: attacker.example``;
  only known names pass (loopback names, the bound address, ``--allowed-host``).
- **Cross-site "simple requests"**: a page may POST ``text/plain``, form-encoded or
  multipart bodies anywhere without a CORS preflight. A body must be JSON, except form
  data on endpoints marked :func:`accepts_form_data` (audio uploads; ``create_app``
  hands their routes over with :func:`form_routes`), and a request with an
  ``Origin`` header must come from the server's own origin or a ``--cors-origin``.

Errors come in the shape of the API the path belongs to (:mod:`terminus.server.shapes`).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from terminus.server.errors import APIError
from terminus.server.settings import is_loopback
from terminus.server.shapes import shaped_error

F = TypeVar("F", bound=Callable[..., Any])
FORM_MARK = "terminus_accepts_form_data"
WILDCARD_ADDRESSES = frozenset({"0.0.0.0", "::", ""})
FORM_TYPES = frozenset({"multipart/form-data", "application/x-www-form-urlencoded"})
DEFAULT_PORTS = {"http": 80, "https": 443}
#: A page's origin is http(s) even when it opens a websocket.
WEB_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}


def accepts_form_data(endpoint: F) -> F:
    """Mark an endpoint that takes form data, multipart or URL-encoded (others take JSON)."""
    setattr(endpoint, FORM_MARK, True)
    return endpoint


def split_host(value: str) -> tuple[str, int | None]:
    """``host[:port]`` (IPv6 in brackets) → (lower-case name without brackets, port)."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif value.count(":") == 1:
        name, _, port = value.partition(":")
    else:
        name, port = value, ""
    return name.rstrip("."), int(port) if port.isdigit() else None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class HostPolicy:
    """Which ``Host`` names the server answers to.

    Always: loopback names and addresses (``localhost``, ``*.localhost``, 127.0.0.0/8,
    ``::1``) and the address the server is bound to. Bound to every interface
    (``0.0.0.0``, ``::``): also any IP address and this machine's host name, since a
    rebinding attack needs a DNS name. Extra entries are exact names, ``*.example.com``
    (its subdomains) or ``*`` (any name).
    """

    def __init__(self, bound_host: str, extra: Iterable[str] = ()) -> None:
        self.bound, _ = split_host(bound_host)
        self.any = False
        self.names: set[str] = set()
        self.suffixes: list[str] = []
        for entry in extra:
            name = entry.strip().lower()
            if name == "*":
                self.any = True
            elif name.startswith("*."):
                self.suffixes.append(name[1:])
            elif name:
                self.names.add(split_host(name)[0])
        if self.bound in WILDCARD_ADDRESSES:
            machine = socket.gethostname().lower()
            self.names |= {machine, machine.split(".")[0] + ".local"}

    def allows(self, name: str) -> bool:
        if self.any or is_loopback(name) or name == self.bound or name in self.names:
            return True
        if self.bound in WILDCARD_ADDRESSES and _is_ip(name):
            return True
        return any(name.endswith(suffix) for suffix in self.suffixes)


def _origin_key(scheme: str, host: str, port: int | None) -> tuple[str, str, int | None]:
    return scheme, host, port if port is not None else DEFAULT_PORTS.get(scheme)


def parse_origin(origin: str) -> tuple[str, str, int | None] | None:
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None  # "null" (sandboxed frames, file:// pages) or garbage
    return _origin_key(parts.scheme.lower(), parts.hostname.lower().rstrip("."), port)


def is_json(content_type: str) -> bool:
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _has_body(headers: Headers) -> bool:
    length = headers.get("content-length")
    if length is not None:
        return length.strip() not in ("", "0")
    return "transfer-encoding" in headers


def form_routes(*routers: Any) -> tuple[BaseRoute, ...]:
    """The routes of ``routers`` whose endpoint is marked :func:`accepts_form_data`."""
    return tuple(
        route
        for router in routers
        for route in router.routes
        if getattr(getattr(route, "endpoint", None), FORM_MARK, False)
    )


class GuardMiddleware:
    """Host allow-list, then Origin, then the body's content type; 403 / 415 otherwise."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        hosts: HostPolicy,
        cors_origins: Iterable[str] = (),
        form_routes: Iterable[BaseRoute] = (),
    ) -> None:
        self.app = app
        self.hosts = hosts
        self.form_routes = tuple(form_routes)
        origins = [o.strip() for o in cors_origins]
        self.any_origin = "*" in origins
        self.origins = {key for o in origins if (key := parse_origin(o)) is not None}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":  # no CORS for websockets: Host and Origin matter most
            if self.check(scope) is not None:
                await send({"type": "websocket.close", "code": 1008})  # the server answers 403
                return
        elif scope["type"] == "http":
            error = self.check(scope)
            if error is not None:
                await shaped_error(scope, error)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def check(self, scope: Scope) -> APIError | None:
        headers = Headers(scope=scope)
        host_header = headers.get("host")
        host, port = split_host(host_header) if host_header else ("", None)
        if host_header is not None and not self.hosts.allows(host):
            return APIError(
                403,
                f"this server does not answer to the host name {host!r}: add it with "
                "--allowed-host (or TERMINUS_ALLOWED_HOSTS) if it is yours",
                code="host_not_allowed",
            )
        origin = headers.get("origin")
        if origin is not None and not self._origin_allowed(origin, scope, host, port):
            return APIError(
                403,
                f"requests from the web origin {origin!r} are not allowed: "
                "add it with --cors-origin if it is yours",
                code="origin_not_allowed",
            )
        if _has_body(headers):
            content_type = headers.get("content-type", "")
            if is_json(content_type):
                return None
            media = content_type.partition(";")[0].strip().lower()
            if media in FORM_TYPES and self._takes_form_data(scope):
                return None
            shown = media or "no Content-Type"
            return APIError(
                415,
                f"{scope.get('method')} {scope.get('path')} takes a JSON body sent as "
                f"`Content-Type: application/json`, not {shown} (curl: --json, or "
                "-H 'Content-Type: application/json')",
                code="unsupported_media_type",
            )
        return None

    def _takes_form_data(self, scope: Scope) -> bool:
        return any(route.matches(scope)[0] == Match.FULL for route in self.form_routes)

    def _origin_allowed(self, origin: str, scope: Scope, host: str, port: int | None) -> bool:
        if self.any_origin:
            return True
        key = parse_origin(origin)
        if key is None:
            return False
        if key in self.origins:
            return True
        scheme = WEB_SCHEMES.get(str(scope.get("scheme", "http")), "http")
        return bool(host) and key == _origin_key(scheme, host, port)  # same origin
