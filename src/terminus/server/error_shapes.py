"""Each API's own error body, made from the OpenAI-shaped one the handlers build.

One server speaks three dialects; a client only understands errors in its own:
Ollama's ``{"error": "..."}`` under ``/api/``, Anthropic's
``{"type": "error", "error": {"type", "message"}}`` under ``/v1/messages``, and
OpenAI's everywhere else. The status code is the same in all three.
"""

from __future__ import annotations

from typing import Any

OLLAMA_PREFIX = "/api/"
ANTHROPIC_PREFIX = "/v1/messages"

#: Anthropic's error types by status (https://docs.anthropic.com/en/api/errors).
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


def dialect(path: str) -> str:
    """``ollama``, ``anthropic`` or ``openai``: whose error shape ``path`` answers in."""
    if path.startswith(OLLAMA_PREFIX) or path == OLLAMA_PREFIX.rstrip("/"):
        return "ollama"
    if path == ANTHROPIC_PREFIX or path.startswith(ANTHROPIC_PREFIX + "/"):
        return "anthropic"
    return "openai"


def ollama_error(message: str) -> dict[str, Any]:
    return {"error": message}


def anthropic_error(status: int, message: str) -> dict[str, Any]:
    kind = ANTHROPIC_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def message_with_param(body: dict[str, Any]) -> str:
    """OpenAI's message, naming the offending field where the message does not already."""
    error = body.get("error") or {}
    message = str(error.get("message") or "error")
    param = error.get("param")
    if param and param not in message:
        message = f"{param}: {message}"
    return message


def reshape(path: str, status: int, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` (OpenAI's shape) in the dialect of the API that ``path`` belongs to."""
    kind = dialect(path)
    if kind == "ollama":
        return ollama_error(message_with_param(body))
    if kind == "anthropic":
        return anthropic_error(status, message_with_param(body))
    return body
