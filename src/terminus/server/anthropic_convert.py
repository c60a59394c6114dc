"""Anthropic's Messages wire format: request schemas, and requests → Terminus arguments.

``system`` (a string or text blocks), ``messages`` whose content is a string or
blocks (``text``, ``tool_use``, ``tool_result``; ``thinking`` blocks are history and
are dropped), ``tools`` with an ``input_schema``, ``tool_choice``
(``auto``/``any``/``tool``/``none``), ``stop_sequences``, ``output_config.format``
(structured output), and ``temperature``, ``top_p``, ``top_k`` (recent SDKs send those
through ``extra_body``). Images, documents and server tools are 400s naming the field.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import Field

from terminus.server.errors import invalid, unsupported
from terminus.server.schemas import Wire
from terminus.types import Message, ToolCall
from terminus.types.vision import Fetch, image_from_base64, prepare_image

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


class Block(Wire):
    type: str
    text: str | None = None
    id: str | None = None
    name: str | None = None
    input: dict[str, Any] | None = None
    tool_use_id: str | None = None
    content: str | list[Block] | None = None
    is_error: bool | None = None
    source: dict[str, Any] | None = None  # image blocks: base64 data or a URL


class AnthropicMessage(Wire):
    role: Literal["user", "assistant"]
    content: str | list[Block]


class AnthropicTool(Wire):
    name: str
    description: str | None = None
    input_schema: dict[str, Any] | None = None
    type: str | None = None  # "custom", or a server tool's versioned type


class AnthropicToolChoice(Wire):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class ThinkingConfig(Wire):
    type: Literal["enabled", "disabled", "adaptive", "between_tools"]
    budget_tokens: int | None = None


class OutputFormat(Wire):
    type: Literal["json_schema"]
    schema_: dict[str, Any] = Field(alias="schema")


class OutputConfig(Wire):
    effort: str | None = None  # a hint for large reasoning models: nothing to change here
    format: OutputFormat | None = None


class MessagesRequest(Wire):
    model: str = Field(min_length=1)
    messages: list[AnthropicMessage] = Field(min_length=1)
    max_tokens: int
    system: str | list[Block] | None = None
    stop_sequences: list[str] | None = None
    stream: bool | None = False
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    tools: list[AnthropicTool] | None = None
    tool_choice: AnthropicToolChoice | None = None
    thinking: ThinkingConfig | None = None
    output_config: OutputConfig | None = None
    metadata: dict[str, Any] | None = None
    service_tier: str | None = None
    # accepted so that they get a clear "unsupported" answer
    mcp_servers: list[Any] | None = None
    container: Any = None


class CountTokensRequest(Wire):
    model: str = Field(min_length=1)
    messages: list[AnthropicMessage] = Field(min_length=1)
    system: str | list[Block] | None = None
    tools: list[AnthropicTool] | None = None
    tool_choice: AnthropicToolChoice | None = None
    thinking: ThinkingConfig | None = None


def message_id() -> str:
    return "msg_" + uuid.uuid4().hex[:24]


def tool_use_id() -> str:
    return "toolu_" + uuid.uuid4().hex[:24]


def _text_of(blocks: str | list[Block] | None, where: str) -> str:
    if blocks is None or isinstance(blocks, str):
        return blocks or ""
    texts = []
    for j, block in enumerate(blocks):
        if block.type != "text":
            raise unsupported(f"{where}.{j}.type", f"content blocks of type {block.type!r} here")
        texts.append(block.text or "")
    return "".join(texts)


def to_messages(
    system: str | list[Block] | None,
    messages: list[AnthropicMessage],
    fetch: Fetch | None = None,
) -> list[Message]:
    """Anthropic's turns as Terminus messages: each ``tool_result`` becomes a tool turn.

    ``image`` blocks in user turns are decoded and checked (``fetch`` reads URL sources)."""
    out: list[Message] = []
    if system:
        out.append(Message(role="system", content=_text_of(system, "system")))
    names: dict[str, str] = {}
    for i, turn in enumerate(messages):
        where = f"messages.{i}.content"
        if isinstance(turn.content, str):
            out.append(Message(role=turn.role, content=turn.content))
            continue
        texts: list[str] = []
        calls: list[ToolCall] = []
        images: list[str] = []
        for j, block in enumerate(turn.content):
            if block.type == "text":
                texts.append(block.text or "")
            elif block.type == "image" and turn.role == "user":
                images.append(_image(block.source, f"{where}.{j}.source", fetch))
            elif block.type in ("thinking", "redacted_thinking"):
                continue  # earlier reasoning: not shown to the model again
            elif block.type == "tool_use" and turn.role == "assistant":
                if not block.name:
                    raise invalid(f"{where}.{j}.name", "a tool_use block needs a name")
                call = ToolCall(
                    id=block.id or tool_use_id(), name=block.name, arguments=block.input or {}
                )
                names[call.id] = call.name
                calls.append(call)
            elif block.type == "tool_result" and turn.role == "user":
                if not block.tool_use_id:
                    raise invalid(
                        f"{where}.{j}.tool_use_id", "a tool_result block needs tool_use_id"
                    )
                result = _text_of(block.content, f"{where}.{j}.content")
                if block.is_error:
                    result = f"Error: {result}"
                out.append(
                    Message(
                        role="tool",
                        content=result,
                        tool_call_id=block.tool_use_id,
                        name=names.get(block.tool_use_id),
                    )
                )
            else:
                raise unsupported(
                    f"{where}.{j}.type", f"{block.type!r} blocks in a {turn.role} message"
                )
        if texts or calls or images:
            out.append(
                Message(
                    role=turn.role,
                    content="".join(texts) or None,
                    tool_calls=tuple(calls),
                    images=tuple(images),
                )
            )
    return out


def _image(source: dict[str, Any] | None, where: str, fetch: Fetch | None) -> str:
    """An image block's source: ``{"type": "base64", "data": ...}`` or ``{"type": "url"}``."""
    kind = (source or {}).get("type")
    if kind == "base64" and isinstance((source or {}).get("data"), str):
        return image_from_base64(source["data"], where)  # type: ignore[index]
    if kind == "url" and isinstance((source or {}).get("url"), str):
        return prepare_image(source["url"], fetch=fetch, where=where)  # type: ignore[index]
    raise unsupported(where, f"image sources of type {kind!r} (base64 and url are)")


def tool_specs(tools: list[AnthropicTool] | None) -> list[dict[str, Any]]:
    specs = []
    for i, tool in enumerate(tools or ()):
        if tool.type not in (None, "custom"):
            raise unsupported(f"tools.{i}.type", f"server tools ({tool.type!r})")
        spec: dict[str, Any] = {"name": tool.name}
        if tool.description:
            spec["description"] = tool.description
        if tool.input_schema is not None:
            spec["parameters"] = tool.input_schema
        specs.append({"type": "function", "function": spec})
    return specs


def tool_choice(choice: AnthropicToolChoice | None, tools: list[dict[str, Any]]) -> str:
    if choice is None or choice.type == "auto":
        return "auto"
    if choice.type == "none":
        return "none"
    if not tools:
        raise invalid("tool_choice", f"tool_choice {choice.type!r} needs `tools`")
    if choice.type == "any":
        return "required"
    if not choice.name:
        raise invalid("tool_choice.name", 'tool_choice of type "tool" needs a name')
    if choice.name not in {t["function"]["name"] for t in tools}:
        raise invalid("tool_choice.name", f"tool_choice names unknown tool {choice.name!r}")
    return choice.name


def wants_thinking(thinking: ThinkingConfig | None) -> bool:
    return thinking is not None and thinking.type != "disabled"


def completion_arguments(
    body: MessagesRequest, fetch: Fetch | None = None
) -> tuple[list[Message], dict[str, Any]]:
    """(messages, keyword arguments) for ``Terminus.completion``; raises 400s."""
    if body.mcp_servers:
        raise unsupported("mcp_servers", "mcp_servers")
    if body.container:
        raise unsupported("container", "container")
    if body.max_tokens < 1:
        raise invalid("max_tokens", "max_tokens must be at least 1")
    tools = tool_specs(body.tools)
    kwargs: dict[str, Any] = {
        "temperature": body.temperature,
        "top_p": body.top_p,
        "top_k": body.top_k,
        "max_tokens": body.max_tokens,
        "tools": tools,
        "tool_choice": tool_choice(body.tool_choice, tools),
    }
    if body.stop_sequences:
        kwargs["stop"] = body.stop_sequences
    fmt = body.output_config.format if body.output_config else None
    if fmt is not None:
        kwargs["response_format"] = {"type": "json_schema", "json_schema": {"schema": fmt.schema_}}
    return to_messages(body.system, body.messages, fetch), kwargs


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": prompt_tokens,
        "output_tokens": completion_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


Block.model_rebuild()
