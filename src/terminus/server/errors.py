"""Errors in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``.

The status comes from the exception's type (``TerminusError.http_status``), never
from its message text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from terminus.errors import ModelNotFoundError, TerminusError
from terminus.server.error_shapes import reshape


class APIError(Exception):
    """An error the server raises itself (auth, limits, unsupported parameters)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str,
        param: str | None = None,
        type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.type = type or error_type(status)
        self.headers = dict(headers or {})


def unsupported(param: str, what: str) -> APIError:
    return APIError(
        400, f"{what} is not supported by this server", code="unsupported_parameter", param=param
    )


def invalid(param: str | None, message: str) -> APIError:
    return APIError(400, message, code="invalid_parameter", param=param)


def error_type(status: int) -> str:
    if status == 429:
        return "rate_limit_error"
    if status >= 500:
        return "server_error"
    return "invalid_request_error"  # OpenAI uses it for 401 and 404 too


def error_body(
    message: str,
    *,
    status: int,
    code: str | None,
    param: str | None = None,
    type: str | None = None,
) -> dict[str, Any]:
    return {
        "error": {
            "message": message,
            "type": type or error_type(status),
            "param": param,
            "code": code,
        }
    }


def describe(exc: BaseException) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(status, body, headers) for any exception; unknown ones are a bare 500."""
    if isinstance(exc, APIError):
        body = error_body(
            exc.message, status=exc.status, code=exc.code, param=exc.param, type=exc.type
        )
        return exc.status, body, exc.headers
    if isinstance(exc, TerminusError):
        param = "model" if isinstance(exc, ModelNotFoundError) else None
        status = exc.http_status
        return status, error_body(exc.one_line(), status=status, code=exc.code, param=param), {}
    return 500, error_body("internal server error", status=500, code="internal_error"), {}


def error_response(exc: BaseException, path: str = "") -> JSONResponse:
    """The error as a response, in the shape of the API that ``path`` belongs to."""
    status, body, headers = describe(exc)
    return JSONResponse(reshape(path, status, body), status_code=status, headers=headers or None)


_TYPE_NAMES = frozenset({"str", "int", "float", "bool", "dict", "list", "none"})


def _union_tag(part: Any) -> bool:
    """pydantic names the member of a union in ``loc`` (``str``, ``list[str]``, a class)."""
    if not isinstance(part, str):
        return False
    return part in _TYPE_NAMES or "[" in part or "-" in part or part[:1].isupper()


def validation_error(errors: Sequence[Any]) -> APIError:
    """The first of pydantic's (or FastAPI's) validation errors as a 400."""
    if not errors:
        return invalid(None, "invalid request body")
    first = errors[0]
    loc = [str(p) for p in first.get("loc", ()) if p != "body" and not _union_tag(p)]
    if first.get("type") == "json_invalid":
        detail = (first.get("ctx") or {}).get("error", "invalid JSON")
        return APIError(
            400,
            f"We could not parse the JSON body of your request: {detail}",
            code="invalid_json",
        )
    if not loc:
        if first.get("type") == "missing":
            return invalid(None, "the request body must be a JSON object")
        return invalid(None, f"invalid request body: {first.get('msg')}")
    param = ".".join(loc)
    return invalid(param, f"{param}: {first.get('msg')}")


def install_error_handlers(app: FastAPI) -> None:
    async def on_api_error(request: Request, exc: Exception) -> JSONResponse:
        return error_response(exc, request.url.path)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return error_response(validation_error(exc.errors()), request.url.path)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        status = exc.status_code
        codes = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}
        message = str(exc.detail) if exc.detail else "error"
        if status == 404:
            message = f"no such endpoint: {request.method} {request.url.path}"
        elif status == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        body = error_body(message, status=status, code=codes.get(status, f"http_{status}"))
        body = reshape(request.url.path, status, body)
        return JSONResponse(body, status_code=status, headers=getattr(exc, "headers", None))

    app.add_exception_handler(APIError, on_api_error)
    app.add_exception_handler(TerminusError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_api_error)  # the 500, before the server logs it
