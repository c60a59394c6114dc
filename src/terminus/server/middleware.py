"""Pure ASGI middleware: access log, API keys, body size limit.

Pure ASGI (not ``BaseHTTPMiddleware``) so streamed responses pass through
untouched and ``http.disconnect`` still reaches the endpoint.
Outermost first: access log → draining (:mod:`terminus.server.drain`) → host, origin
and content type (:mod:`terminus.server.guard`) → CORS → auth → body limit → the app.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from terminus.server.errors import APIError, error_response
from terminus.types import Stats

ACCESS_KEY = "terminus.access"
#: How much of an oversized body is read (and dropped) before the 413, so that a
#: client still writing its request reads the answer instead of a reset connection.
DRAIN_LIMIT = 8 * 1024 * 1024


@dataclass
class AccessRecord:
    """What an endpoint adds to its request's access-log line."""

    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    stream: bool | None = None
    ttft_s: float | None = None  # for /metrics, not the access line
    tokens_per_s: float | None = None

    def note(self, stats: Stats | None, stop_reason: str | None) -> None:
        if stats is not None:
            self.prompt_tokens = stats.prompt_tokens
            self.completion_tokens = stats.completion_tokens
            self.ttft_s = stats.time_to_first_token_s
            self.tokens_per_s = stats.tokens_per_second
        self.finish_reason = stop_reason


def access_record(request: Request) -> AccessRecord:
    record = request.scope.get(ACCESS_KEY)
    if not isinstance(record, AccessRecord):
        record = AccessRecord()
        request.scope[ACCESS_KEY] = record
    return record


class AccessLogMiddleware:
    """One JSON line per request on the ``terminus.server`` logger, when it ends."""

    def __init__(self, app: ASGIApp, logger: logging.Logger) -> None:
        self.app = app
        self.logger = logger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        record = AccessRecord()
        scope[ACCESS_KEY] = record
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            line: dict[str, Any] = {
                "method": scope.get("method"),
                "path": scope.get("path"),
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            }
            for name in ("model", "stream", "prompt_tokens", "completion_tokens", "finish_reason"):
                value = getattr(record, name)
                if value is not None:
                    line[name] = value
            self.logger.info(json.dumps(line, separators=(",", ":")))


def bearer_token(headers: Headers) -> str | None:
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    # Anthropic's clients send the key as `x-api-key`
    return headers.get("x-api-key", "").strip() or None


class AuthMiddleware:
    """``Authorization: Bearer KEY`` on every path but the health probes."""

    def __init__(
        self,
        app: ASGIApp,
        keys: frozenset[str],
        open_paths: frozenset[str] = frozenset(),
        open_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.keys = tuple(k.encode() for k in keys)
        self.open_paths = open_paths
        self.open_prefixes = open_prefixes

    def _valid(self, token: str) -> bool:
        given = token.encode()
        valid = False
        for key in self.keys:  # no early exit: the time does not depend on which key
            valid |= hmac.compare_digest(given, key)
        return valid

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or not self.keys
            or path in self.open_paths
            or path.startswith(self.open_prefixes)
        ):
            await self.app(scope, receive, send)
            return
        token = bearer_token(Headers(scope=scope))
        if token is None:
            message = "missing API key: send it as `Authorization: Bearer KEY`"
        elif not self._valid(token):
            message = "incorrect API key provided"
        else:
            await self.app(scope, receive, send)
            return
        error = APIError(
            401, message, code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"}
        )
        await error_response(error, scope.get("path", ""))(scope, receive, send)


class BodyLimitMiddleware:
    """Read the whole request body up front, answering 413 past ``limit`` bytes.

    The endpoints parse whole JSON bodies anyway; buffering here means the limit
    holds for chunked uploads too. After the body, ``receive`` passes through, so
    endpoints still see ``http.disconnect``.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            if not declared.isdigit():
                error = APIError(400, "invalid Content-Length header", code="invalid_request")
                await error_response(error, scope.get("path", ""))(scope, receive, send)
                return
            if int(declared) > self.limit:
                # a client waiting for "100 Continue" has sent nothing: nothing to drain
                waiting = "100-continue" in Headers(scope=scope).get("expect", "").lower()
                await self._too_large(scope, receive, send, int(declared), more=not waiting)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left before its request was complete
            body = message.get("body", b"")
            size += len(body)
            if size > self.limit:
                await self._too_large(
                    scope, receive, send, size, more=bool(message.get("more_body"))
                )
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        buffered: Message | None = {
            "type": "http.request",
            "body": b"".join(chunks),
            "more_body": False,
        }

        async def replay() -> Message:
            nonlocal buffered
            if buffered is not None:
                message, buffered = buffered, None
                return message
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(
        self, scope: Scope, receive: Receive, send: Send, size: int, *, more: bool = True
    ) -> None:
        drained = 0
        while more and drained < DRAIN_LIMIT:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            drained += len(message.get("body", b""))
            more = bool(message.get("more_body", False))
        error = APIError(
            413,
            f"the request body is larger than this server's limit of {self.limit} bytes",
            code="request_too_large",
        )
        await error_response(error, scope.get("path", ""))(scope, receive, send)
