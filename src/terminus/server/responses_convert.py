"""Responses API requests → the arguments of ``Terminus.completion``.

Input items (messages, ``function_call``, ``function_call_output``) become Terminus
messages; ``instructions`` becomes the system message; flat function tools,
``tool_choice`` and ``text.format`` map to their chat equivalents. What the server
cannot honour is a ``400`` naming the parameter, never silently dropped.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Literal

from pydantic import Field

from terminus.server.convert import new_call_id
from terminus.server.errors import invalid, unsupported
from terminus.server.schemas import Wire
from terminus.types import Message, ToolCall
from terminus.types.vision import Fetch, prepare_image

#: Item types whose text the model reads.
_TEXT_PARTS = frozenset({"input_text", "output_text", "text", "refusal"})
_ROLES: dict[str, Literal["system", "user", "assistant"]] = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
}
#: Features of OpenAI's hosted service that a local server does not have.
_UNSUPPORTED_FIELDS = {
    "background": "background responses",
    "conversation": "conversations (use previous_response_id)",
    "prompt": "stored prompt templates",
    "top_logprobs": "logprobs",
}


class ResponsesRequest(Wire):
    model: str = Field(min_length=1)
    input: str | list[dict[str, Any]] = ""
    instructions: str | None = None
    previous_response_id: str | None = None
    store: bool | None = True
    stream: bool | None = False
    tools: list[dict[str, Any]] | None = None
    tool_choice: Literal["auto", "none", "required"] | dict[str, Any] | None = None
    text: dict[str, Any] | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_output_tokens: int | None = None
    metadata: dict[str, str] | None = None
    parallel_tool_calls: bool | None = None
    truncation: str | None = None
    user: str | None = None
    reasoning: dict[str, Any] | None = None
    include: list[str] | None = None
    background: bool | None = None
    conversation: str | dict[str, Any] | None = None
    prompt: dict[str, Any] | None = None
    top_logprobs: int | None = None
    # llama.cpp-style extensions, as on /v1/chat/completions
    seed: int | None = None
    top_k: int | None = None
    min_p: float | None = None
    repeat_penalty: float | None = None
    stop: str | list[str] | None = None
    # Ollama-style: how long the model stays loaded once idle
    keep_alive: float | str | None = None


def new_item_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def input_items(body: ResponsesRequest) -> list[dict[str, Any]]:
    """This request's input as a list of items, each with an id (as ``input_items`` lists)."""
    raw: list[dict[str, Any]]
    if isinstance(body.input, str):
        if not body.input and body.previous_response_id is None:
            raise invalid("input", "input must not be empty")
        raw = [{"type": "message", "role": "user", "content": body.input}] if body.input else []
    else:
        raw = body.input
    items: list[dict[str, Any]] = []
    for i, item in enumerate(raw):
        kind = item.get("type", "message")
        entry = {**item, "type": kind}
        if "id" not in entry or not entry["id"]:
            prefix = {"message": "msg", "function_call": "fc"}.get(kind, "item")
            entry["id"] = new_item_id(prefix)
        if kind == "message" and isinstance(entry.get("content"), str):
            part = "output_text" if entry.get("role") == "assistant" else "input_text"
            entry["content"] = [{"type": part, "text": entry["content"]}]
        _check_item(entry, f"input.{i}")
        items.append(entry)
    return items


def _check_item(item: dict[str, Any], where: str) -> None:
    kind = item["type"]
    if kind == "message":
        if item.get("role") not in _ROLES:
            raise invalid(f"{where}.role", f"unknown role {item.get('role')!r}")
        if not isinstance(item.get("content"), list):
            raise invalid(f"{where}.content", "content must be a string or a list of parts")
        for j, part in enumerate(item["content"]):
            if isinstance(part, dict) and part.get("type") == "input_image":
                if item.get("role") != "user":
                    raise invalid(f"{where}.content.{j}", "only user messages carry images")
                if not isinstance(part.get("image_url"), str):
                    raise unsupported(
                        f"{where}.content.{j}", "input_image without image_url (file_id)"
                    )
                continue
            if not isinstance(part, dict) or part.get("type") not in _TEXT_PARTS:
                kind_name = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise unsupported(f"{where}.content.{j}", f"content of type {kind_name!r}")
    elif kind == "function_call":
        for name in ("call_id", "name"):
            if not isinstance(item.get(name), str) or not item[name]:
                raise invalid(f"{where}.{name}", f"a function_call item needs `{name}`")
    elif kind == "function_call_output":
        if not isinstance(item.get("call_id"), str) or not item["call_id"]:
            raise invalid(f"{where}.call_id", "a function_call_output item needs `call_id`")
        if not isinstance(item.get("output"), str | list):
            raise invalid(f"{where}.output", "output must be a string or a list of parts")
    elif kind != "reasoning":
        raise unsupported(f"{where}.type", f"input items of type {kind!r}")


def to_messages(
    items: list[dict[str, Any]], instructions: str | None, fetch: Fetch | None = None
) -> list[Message]:
    """Items (already checked) as Terminus messages; parallel calls share one assistant turn.

    ``input_image`` parts are decoded and checked here (``fetch`` reads http(s) URLs)."""
    messages: list[Message] = []
    if instructions:
        messages.append(Message(role="system", content=instructions))
    names: dict[str, str] = {}
    for i, item in enumerate(items):
        kind = item["type"]
        if kind == "message":
            role = _ROLES[item["role"]]
            images = tuple(
                prepare_image(p["image_url"], fetch=fetch, where=f"input.{i}.content.{j}")
                for j, p in enumerate(item["content"])
                if isinstance(p, dict) and p.get("type") == "input_image"
            )
            messages.append(Message(role=role, content=_text(item["content"]), images=images))
        elif kind == "function_call":
            call = _call(item, f"input.{i}.arguments")
            names[call.id] = call.name
            last = messages[-1] if messages else None
            if last is not None and last.role == "assistant":
                messages[-1] = last.model_copy(update={"tool_calls": (*last.tool_calls, call)})
            else:
                messages.append(Message(role="assistant", content=None, tool_calls=(call,)))
        elif kind == "function_call_output":
            output = item["output"]
            text = output if isinstance(output, str) else _text(output)
            messages.append(
                Message(
                    role="tool",
                    content=text,
                    tool_call_id=item["call_id"],
                    name=names.get(item["call_id"]),
                )
            )
    return messages


def _text(parts: list[Any]) -> str:
    return "".join(
        str(p.get("text") or p.get("refusal") or "")
        for p in parts
        if isinstance(p, dict) and p.get("type") in _TEXT_PARTS
    )


def _call(item: dict[str, Any], where: str) -> ToolCall:
    arguments: Any = item.get("arguments") or "{}"
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError as exc:
            raise invalid(where, f"function call arguments are not valid JSON: {exc}") from exc
    if not isinstance(arguments, dict):
        raise invalid(where, "function call arguments must be a JSON object")
    return ToolCall(id=item["call_id"], name=item["name"], arguments=arguments)


def completion_kwargs(body: ResponsesRequest) -> dict[str, Any]:
    """Keyword arguments for ``Terminus.completion``; raises ``APIError`` (400)."""
    for name, what in _UNSUPPORTED_FIELDS.items():
        if getattr(body, name):
            raise unsupported(name, what)
    kwargs: dict[str, Any] = {
        "temperature": body.temperature,
        "top_p": body.top_p,
        "top_k": body.top_k,
        "min_p": body.min_p,
        "repeat_penalty": body.repeat_penalty,
        "seed": body.seed,
        "max_tokens": body.max_output_tokens,
    }
    if body.stop is not None:
        kwargs["stop"] = [body.stop] if isinstance(body.stop, str) else list(body.stop)
    tools = chat_tools(body.tools or [])
    kwargs["tools"] = tools
    kwargs["tool_choice"] = _tool_choice(body.tool_choice, tools)
    kwargs["response_format"] = response_format(body.text)
    return kwargs


def chat_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Flat Responses function tools → chat-style ``{"type": "function", "function": …}``."""
    out: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        if tool.get("type") != "function":
            raise unsupported(f"tools.{i}.type", f"tools of type {tool.get('type')!r}")
        name = tool.get("name")
        if not isinstance(name, str) or not name:
            raise invalid(f"tools.{i}.name", "a function tool needs a `name`")
        spec: dict[str, Any] = {"name": name}
        if tool.get("description"):
            spec["description"] = tool["description"]
        if tool.get("parameters") is not None:
            spec["parameters"] = tool["parameters"]
        out.append({"type": "function", "function": spec})
    return out


def _tool_choice(choice: str | dict[str, Any] | None, tools: list[dict[str, Any]]) -> str:
    if choice is None:
        return "auto"
    if isinstance(choice, dict):
        if choice.get("type") != "function" or not isinstance(choice.get("name"), str):
            raise unsupported("tool_choice", f"tool_choice of type {choice.get('type')!r}")
        name: str = choice["name"]
    else:
        name = choice
    if name in ("auto", "none"):
        return name
    if not tools:
        raise invalid("tool_choice", f"tool_choice {name!r} needs `tools`")
    if name != "required" and name not in {t["function"]["name"] for t in tools}:
        raise invalid("tool_choice", f"tool_choice names unknown tool {name!r}")
    return name


def text_format(text: dict[str, Any] | None) -> dict[str, Any]:
    """The ``text`` object echoed on the response (``{"format": {"type": "text"}}`` by default)."""
    fmt = (text or {}).get("format") or {"type": "text"}
    return {"format": fmt}


def response_format(text: dict[str, Any] | None) -> dict[str, Any] | None:
    fmt = text_format(text)["format"]
    if not isinstance(fmt, dict):
        raise invalid("text.format", "text.format must be an object")
    kind = fmt.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        schema = fmt.get("schema")
        if not isinstance(schema, dict):
            raise invalid("text.format.schema", "a json_schema format needs a `schema` object")
        return {"type": "json_schema", "json_schema": {"schema": schema}}
    raise unsupported("text.format.type", f"text.format of type {kind!r}")


def tool_call_item(call: ToolCall) -> dict[str, Any]:
    """A ``function_call`` output item for a call the model made."""
    return {
        "id": new_item_id("fc"),
        "type": "function_call",
        "status": "completed",
        "call_id": call.id or new_call_id(),
        "name": call.name,
        "arguments": json.dumps(call.arguments),
    }
