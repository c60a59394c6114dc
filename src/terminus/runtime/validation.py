"""Request checks every engine relies on, done once before a model is touched."""

from __future__ import annotations

from typing import Any

from terminus.errors import ChatImageError, InvalidParameterError, InvalidSchemaError
from terminus.types import ChatRequest
from terminus.types.vision import MAX_IMAGES


def check_json_schema(schema: Any) -> None:
    if not isinstance(schema, dict):
        raise InvalidSchemaError("a JSON schema must be an object")
    from jsonschema import exceptions, validators

    try:
        validators.validator_for(schema).check_schema(schema)
    except exceptions.SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "(root)"
        raise InvalidSchemaError(f"invalid JSON schema at {where}: {exc.message}") from exc


def check_request(request: ChatRequest) -> None:
    images = sum(len(m.images) for m in request.messages)
    if images > MAX_IMAGES:
        raise ChatImageError(f"{images} images in one request; at most {MAX_IMAGES}")
    fmt = request.response_format
    if fmt is not None and fmt.type == "json_schema":
        if fmt.json_schema is None:
            raise InvalidSchemaError("response_format json_schema needs a schema")
        check_json_schema(fmt.json_schema)
    seen: set[str] = set()
    for tool in request.tools:
        if tool.name in seen:  # which one a model's call means would be a guess
            raise InvalidParameterError(
                f"two tools are named {tool.name!r}; tool names must be unique"
            )
        seen.add(tool.name)
        check_json_schema(tool.parameters)
    choice = request.tool_choice
    if choice not in ("auto", "none", "required") and choice not in {t.name for t in request.tools}:
        raise InvalidParameterError(f"tool_choice names unknown tool {choice!r}")
    if choice not in ("auto", "none") and not request.tools:
        raise InvalidParameterError(f"tool_choice={choice!r} needs tools")
