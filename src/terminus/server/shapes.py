"""Error bodies in the shape of the API a path belongs to.

Middleware answers before any router runs (Host and Origin checks, content types,
keys, body limit, draining), so it cannot rely on a router's own error handlers.
It picks the body by path prefix instead: OpenAI's shape by default, Ollama's
``{"error": "..."}`` under ``/api/``, Anthropic's under ``/v1/messages``. A router
with yet another shape adds its prefix to ``ERROR_SHAPES``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import Scope

from terminus.server.errors import APIError, error_body

#: (status, message, code) → a JSON body.
ErrorShape = Callable[[int, str, str], dict[str, Any]]


def openai_shape(status: int, message: str, code: str) -> dict[str, Any]:
    return error_body(message, status=status, code=code)


def ollama_shape(status: int, message: str, code: str) -> dict[str, Any]:
    return {"error": message}


#: Anthropic's error ``type`` for each status (its API reference, "Errors").
ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    415: "invalid_request_error",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


def anthropic_shape(status: int, message: str, code: str) -> dict[str, Any]:
    kind = ANTHROPIC_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


#: Path prefixes (a whole segment each) and their shape; anything else gets OpenAI's.
ERROR_SHAPES: tuple[tuple[str, ErrorShape], ...] = (
    ("/v1/messages", anthropic_shape),
    ("/api", ollama_shape),
)


def shape_for(path: str) -> ErrorShape:
    for prefix, shape in ERROR_SHAPES:
        if path == prefix or path.startswith(prefix + "/"):
            return shape
    return openai_shape


def shaped_error(scope: Scope, error: APIError) -> JSONResponse:
    """``error`` as a response in the shape of the API that ``scope``'s path belongs to."""
    body = shape_for(str(scope.get("path", "")))(error.status, error.message, error.code)
    return JSONResponse(body, status_code=error.status, headers=error.headers or None)
