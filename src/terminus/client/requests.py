"""Turning friendly call arguments into a validated ChatRequest."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from pydantic import BaseModel, ValidationError

from terminus.errors import InvalidParameterError
from terminus.types import (
    ChatRequest,
    GenerationParams,
    ResponseFormat,
    TextRequest,
    Tool,
    parse_messages,
)
from terminus.types.chat import MessagesLike, validation_message

ToolLike = Tool | dict[str, Any]
ResponseFormatLike = ResponseFormat | dict[str, Any] | type[BaseModel]


def build_chat_request(
    model: str,
    messages: MessagesLike,
    *,
    system: str | None = None,
    response_format: ResponseFormatLike | None = None,
    tools: Sequence[ToolLike] | None = None,
    tool_choice: str = "auto",
    **params: Any,
) -> ChatRequest:
    with _invalid_as_parameter_error():
        return ChatRequest(
            model=model,
            messages=parse_messages(messages, system),
            params=_generation_params(params),
            response_format=_response_format(response_format),
            tools=tuple(_tool(t) for t in tools or ()),
            tool_choice=tool_choice,
        )


def build_text_request(
    model: str,
    prompt: str | list[int],
    *,
    response_format: ResponseFormatLike | None = None,
    **params: Any,
) -> TextRequest:
    with _invalid_as_parameter_error():
        return TextRequest(
            model=model,
            prompt=prompt,
            params=_generation_params(params),
            response_format=_response_format(response_format),
        )


def _generation_params(params: dict[str, Any]) -> GenerationParams:
    """Sampling keywords (``None`` meaning unset; ``stop`` a string or a list)."""
    clean = {k: v for k, v in params.items() if v is not None}
    if "stop" in clean:
        stop = clean["stop"]
        clean["stop"] = (stop,) if isinstance(stop, str) else tuple(stop)
    return GenerationParams(**clean)


@contextmanager
def _invalid_as_parameter_error() -> Iterator[None]:
    try:
        yield
    except ValidationError as exc:
        raise InvalidParameterError(f"invalid request: {validation_message(exc)}") from exc
    except TypeError as exc:
        raise InvalidParameterError(f"invalid request: {exc}") from exc


def _response_format(value: ResponseFormatLike | None) -> ResponseFormat | None:
    if value is None or isinstance(value, ResponseFormat):
        return value
    if isinstance(value, type) and issubclass(value, BaseModel):
        return ResponseFormat(type="json_schema", json_schema=value.model_json_schema())
    if isinstance(value, dict):
        kind = value.get("type")
        if kind == "json_schema" and isinstance(value.get("json_schema"), dict):
            inner = value["json_schema"]  # OpenAI shape: {"json_schema": {"schema": {...}}}
            return ResponseFormat(type="json_schema", json_schema=inner.get("schema", inner))
        if kind in ("json_object", "text"):
            return ResponseFormat(type=kind)
        return ResponseFormat(type="json_schema", json_schema=value)  # a bare schema
    raise InvalidParameterError(
        f"response_format must be a schema dict or a model class, not {type(value).__name__}"
    )


def _tool(value: ToolLike) -> Tool:
    if isinstance(value, Tool):
        return value
    if isinstance(value, dict):
        spec = (
            value.get("function", value) if value.get("type", "function") == "function" else value
        )
        return Tool.model_validate(
            {k: spec[k] for k in ("name", "description", "parameters") if k in spec}
        )
    raise InvalidParameterError(f"a tool must be a dict or Tool, not {type(value).__name__}")
