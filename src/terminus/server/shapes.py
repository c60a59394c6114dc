"""Middleware errors in the shape of the API a path belongs to.

Middleware answers before any router runs (Host and Origin checks, content types,
keys, body limit, draining), so it cannot rely on a router's own error handlers: it
builds OpenAI's body and lets :func:`terminus.server.error_shapes.reshape` turn it into
the dialect of the path (Ollama's under ``/api``, Anthropic's under ``/v1/messages``).
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import Scope

from terminus.server.error_shapes import reshape
from terminus.server.errors import APIError, error_body


def shaped_error(scope: Scope, error: APIError) -> JSONResponse:
    """``error`` as a response in the shape of the API that ``scope``'s path belongs to."""
    body = error_body(error.message, status=error.status, code=error.code, param=error.param)
    body = reshape(str(scope.get("path", "")), error.status, body)
    return JSONResponse(body, status_code=error.status, headers=error.headers or None)
