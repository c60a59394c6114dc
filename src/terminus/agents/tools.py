"""Tools an agent can call: Python functions (schema from the signature) and the common shape.

A tool turns JSON arguments into the text the model reads next. Whatever goes
wrong inside one (it raises, hangs past its timeout, returns something that is
not JSON, gets arguments that do not fit its schema) becomes a
:class:`ToolFailure` with a kind, which the loop hands back to the model.
"""

from __future__ import annotations

import inspect
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError, create_model

from terminus.errors import InvalidParameterError
from terminus.types import CancelToken, Tool

#: What a tool result may be at most before it is cut (small models have small contexts).
MAX_RESULT_CHARS = 4000
DEFAULT_TIMEOUT_S = 30.0
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class ToolFailure(Exception):
    """A tool call that produced no usable result; ``kind`` says why."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


Invoker = Callable[[dict[str, Any], float, CancelToken], str]


@dataclass(frozen=True)
class AgentTool:
    """One callable tool: what the model is told, and how to run it.

    ``invoke(arguments, timeout_s, cancel)`` returns the text the model reads or
    raises :class:`ToolFailure`. ``dangerous`` tools run only when the agent's
    approval hook says yes.
    """

    name: str
    description: str
    parameters: dict[str, Any]
    invoke: Invoker = field(repr=False, compare=False)
    dangerous: bool = False
    timeout_s: float | None = None
    source: str = "python"

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise InvalidParameterError(
                f"tool name {self.name!r} must be 1-64 letters, digits, '_', '.' or '-'"
            )

    def spec(self) -> Tool:
        return Tool(name=self.name, description=self.description, parameters=self.parameters)


def tool(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    dangerous: bool = False,
    timeout_s: float | None = None,
) -> Any:
    """Make a Python function an agent tool (usable bare, ``@tool``, or ``@tool(dangerous=True)``)."""

    def wrap(f: Callable[..., Any]) -> AgentTool:
        return function_tool(
            f, name=name, description=description, dangerous=dangerous, timeout_s=timeout_s
        )

    return wrap(fn) if fn is not None else wrap


def function_tool(
    fn: Callable[..., Any],
    *,
    name: str | None = None,
    description: str | None = None,
    dangerous: bool = False,
    timeout_s: float | None = None,
) -> AgentTool:
    """The tool for ``fn``: parameters from its annotations, descriptions from its docstring."""
    if not callable(fn):
        raise InvalidParameterError(f"a tool must be callable, not {type(fn).__name__}")
    if inspect.iscoroutinefunction(fn):
        raise InvalidParameterError(
            f"{fn.__name__} is async; wrap it in a plain function for the tool loop"
        )
    summary, arg_docs = _parse_docstring(inspect.getdoc(fn) or "")
    model = _arguments_model(fn, arg_docs)
    schema = _clean_schema(model.model_json_schema())

    def invoke(arguments: dict[str, Any], timeout: float, cancel: CancelToken) -> str:
        try:
            parsed = model.model_validate(arguments)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
                for e in exc.errors()
            )
            raise ToolFailure("bad_arguments", f"invalid arguments: {problems}") from None
        kwargs = {k: getattr(parsed, k) for k in type(parsed).model_fields}
        return run_in_thread(lambda: fn(**kwargs), timeout, cancel)

    return AgentTool(
        name=name or fn.__name__,
        description=description or summary,
        parameters=schema,
        invoke=invoke,
        dangerous=dangerous,
        timeout_s=timeout_s,
    )


def as_tool(value: Any) -> AgentTool:
    if isinstance(value, AgentTool):
        return value
    if callable(value):
        return function_tool(value)
    raise InvalidParameterError(
        f"a tool must be a function, an AgentTool or an MCP server, not {type(value).__name__}"
    )


def run_in_thread(call: Callable[[], Any], timeout: float, cancel: CancelToken) -> str:
    """Run ``call`` on a worker thread; the caller waits at most ``timeout`` seconds.

    A hung function cannot be killed from Python; its daemon thread is abandoned
    and the loop moves on.
    """
    box: dict[str, Any] = {}
    done = threading.Event()

    def work() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # report anything the tool raised to the model
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=work, name="terminus-tool", daemon=True).start()
    waited = 0.0
    while not done.wait(0.05):
        waited += 0.05
        if cancel.cancelled:
            raise ToolFailure("raised", "cancelled")
        if waited >= timeout:
            raise ToolFailure("timeout", f"no result within {timeout:g} s")
    if "error" in box:
        exc = box["error"]
        raise ToolFailure("raised", f"{type(exc).__name__}: {exc}")
    return result_text(box.get("value"))


def result_text(value: Any) -> str:
    """The model-facing text of a result: strings as they are, anything else as JSON."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, allow_nan=False, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise ToolFailure(
                "bad_result", f"returned a {type(value).__name__}, which is not JSON ({exc})"
            ) from None
    if len(text) > MAX_RESULT_CHARS:
        text = text[:MAX_RESULT_CHARS] + f"... [cut: {len(text)} characters in all]"
    return text


def _arguments_model(fn: Callable[..., Any], arg_docs: dict[str, str]) -> type[BaseModel]:
    from pydantic import Field

    fields: dict[str, Any] = {}
    hints = _type_hints(fn)
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise InvalidParameterError(f"{fn.__name__}: *args/**kwargs cannot become a schema")
        annotation = hints.get(param.name, Any)
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (annotation, Field(default, description=arg_docs.get(param.name)))
    try:
        return create_model(f"{fn.__name__}_arguments", **fields)
    except Exception as exc:  # pydantic rejects an annotation it cannot describe
        raise InvalidParameterError(
            f"{fn.__name__}: cannot describe its parameters ({exc})"
        ) from exc


def _type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    import typing

    try:
        return typing.get_type_hints(fn)
    except Exception:  # unresolvable forward references: fall back to raw annotations
        return dict(getattr(fn, "__annotations__", {}))


def _clean_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Drop pydantic's titles: they cost small models context and say nothing new."""
    schema = dict(schema)
    schema.pop("title", None)
    props = {}
    for key, prop in schema.get("properties", {}).items():
        props[key] = {k: v for k, v in prop.items() if k != "title"}
    schema["properties"] = props
    return schema


_ARGS_HEADER = re.compile(r"^(Args|Arguments|Parameters):\s*$", re.IGNORECASE)
_ARG_LINE = re.compile(r"^\s*(\w+)\s*(?:\([^)]*\))?\s*:\s*(.+)$")


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The first paragraph, and Google-style ``Args:`` descriptions."""
    paragraph = doc.strip().split("\n\n", 1)[0]
    summary = " ".join(line.strip() for line in paragraph.splitlines())
    if _ARGS_HEADER.match(paragraph.splitlines()[0].strip() if paragraph else ""):
        summary = ""
    args: dict[str, str] = {}
    in_args = False
    for line in doc.splitlines():
        if _ARGS_HEADER.match(line.strip()):
            in_args = True
        elif in_args:
            match = _ARG_LINE.match(line)
            if match:
                args[match.group(1)] = match.group(2).strip()
            elif line.strip() and not line.startswith((" ", "\t")):
                in_args = False
    return summary, args
