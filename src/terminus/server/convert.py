"""OpenAI request fields → the arguments of ``Terminus.completion`` / ``text_completion``.

Anything the server cannot honour is a ``400`` naming the parameter, never silently
dropped: penalties, logit bias, audio, legacy
``functions``. ``n > 1`` runs ``n`` generations side by side (llama.cpp slots).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from terminus.server.errors import APIError, invalid, unsupported
from terminus.server.schemas import (
    ChatCompletionRequest,
    ChatMessageIn,
    CompletionRequest,
    ContentPart,
    Sampling,
)
from terminus.types import Message, ToolCall
from terminus.types.vision import Fetch, prepare_image


def new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


#: Choices one request may ask for (each takes a generation slot).
MAX_CHOICES = 8
#: OpenAI's bounds on ``top_logprobs`` (chat) and ``logprobs`` (text completions).
MAX_TOP_LOGPROBS = 20
MAX_TEXT_LOGPROBS = 5


def choices(body: Sampling) -> int:
    """``n``: how many completions to run for this request."""
    n = 1 if body.n is None else body.n
    if n < 1:
        raise invalid("n", "n must be at least 1")
    if n > MAX_CHOICES:
        raise invalid("n", f"n must be at most {MAX_CHOICES}")
    return n


def seeded(kwargs: dict[str, Any], index: int) -> dict[str, Any]:
    """The arguments of choice ``index``: a given seed is offset so the choices differ."""
    if index and kwargs.get("seed") is not None:
        return {**kwargs, "seed": (kwargs["seed"] + index) % 2**32}
    return kwargs


def sampling_kwargs(body: Sampling, max_tokens: int | None) -> dict[str, Any]:
    """Sampling fields both endpoints share; ranges are checked by Terminus itself."""
    choices(body)
    for name in ("frequency_penalty", "presence_penalty"):
        if getattr(body, name):
            raise unsupported(name, name)
    if body.logit_bias:
        raise unsupported("logit_bias", "logit_bias")
    kwargs: dict[str, Any] = {
        "temperature": body.temperature,
        "top_p": body.top_p,
        "top_k": body.top_k,
        "min_p": body.min_p,
        "repeat_penalty": body.repeat_penalty,
        "seed": body.seed,
        "max_tokens": max_tokens,
        "cache_prompt": body.cache_prompt,
    }
    if body.stop is not None:  # "" and [""] are invalid, as from Python
        kwargs["stop"] = [body.stop] if isinstance(body.stop, str) else list(body.stop)
    return kwargs


# --- chat -------------------------------------------------------------------------------


def chat_arguments(
    body: ChatCompletionRequest, fetch: Fetch | None = None
) -> tuple[list[Message], dict[str, Any]]:
    """(messages, keyword arguments) for ``completion``; raises ``APIError`` (400).

    ``fetch`` reads ``http(s)`` image URLs (None: only data URLs are accepted)."""
    if body.modalities and any(m != "text" for m in body.modalities):
        raise unsupported("modalities", "output other than text")
    if body.audio:
        raise unsupported("audio", "audio output")
    if body.prediction:
        raise unsupported("prediction", "predicted outputs")
    if body.functions or body.function_call:
        raise APIError(
            400,
            "legacy `functions` / `function_call` are not supported; use `tools` and `tool_choice`",
            code="unsupported_parameter",
            param="functions" if body.functions else "function_call",
        )
    max_tokens = (
        body.max_completion_tokens if body.max_completion_tokens is not None else body.max_tokens
    )
    kwargs = sampling_kwargs(body, max_tokens)
    kwargs["top_logprobs"] = chat_top_logprobs(body)
    tools = _tools(body)
    kwargs["tools"] = tools
    kwargs["tool_choice"] = _tool_choice(body, tools)
    kwargs["response_format"] = _response_format(body)
    return to_messages(body.messages, fetch), kwargs


def chat_top_logprobs(body: ChatCompletionRequest) -> int | None:
    """How many alternatives the engine reports per token (at least 1 with ``logprobs``)."""
    top = body.top_logprobs
    if top is not None and not 0 <= top <= MAX_TOP_LOGPROBS:
        raise invalid("top_logprobs", f"top_logprobs must be between 0 and {MAX_TOP_LOGPROBS}")
    if not body.logprobs:
        if top:
            raise invalid("top_logprobs", "top_logprobs needs logprobs: true")
        return None
    return max(top or 0, 1)


def to_messages(messages: list[ChatMessageIn], fetch: Fetch | None = None) -> list[Message]:
    """OpenAI messages as Terminus messages; tool results get their call's function name."""
    names: dict[str, str] = {}
    out: list[Message] = []
    for i, m in enumerate(messages):
        where = f"messages.{i}"
        if m.role == "function":
            raise unsupported(f"{where}.role", "the legacy `function` role (use `tool`)")
        text = _text(m.content, where, images=m.role == "user")
        if m.role == "assistant":
            calls = tuple(
                _call(c.id, c.function.name, c.function.arguments, where)
                for c in m.tool_calls or ()
            )
            names.update((c.id, c.name) for c in calls)
            out.append(Message(role="assistant", content=text, tool_calls=calls))
        elif m.role == "tool":
            if not m.tool_call_id:
                raise invalid(f"{where}.tool_call_id", "a tool message needs tool_call_id")
            name = m.name or names.get(m.tool_call_id)
            out.append(Message(role="tool", content=text, tool_call_id=m.tool_call_id, name=name))
        else:
            role = "system" if m.role == "developer" else m.role
            images = _images(m.content, where, fetch) if m.role == "user" else ()
            out.append(Message(role=role, content=text, images=images))
    return out


def _images(
    content: str | list[ContentPart] | None, where: str, fetch: Fetch | None
) -> tuple[str, ...]:
    """The ``image_url`` parts' images, checked (a bad one is a 400 naming the part)."""
    if not isinstance(content, list):
        return ()
    found = []
    for j, part in enumerate(content):
        if part.type == "image_url":
            url = part.image_url.get("url") if isinstance(part.image_url, dict) else part.image_url
            found.append(prepare_image(url, fetch=fetch, where=f"{where}.content.{j}"))
    return tuple(found)


def _text(content: str | list[ContentPart] | None, where: str, images: bool = False) -> str | None:
    if content is None or isinstance(content, str):
        return content
    texts: list[str] = []
    for j, part in enumerate(content):
        if part.type in ("text", "input_text", "refusal"):
            texts.append(part.text or getattr(part, "refusal", None) or "")
        elif part.type == "image_url" and images:
            continue  # read by _images
        else:
            raise unsupported(f"{where}.content.{j}", f"content of type {part.type!r}")
    return "".join(texts)


def _call(call_id: str | None, name: str, arguments: Any, where: str) -> ToolCall:
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError as exc:
            raise invalid(
                f"{where}.tool_calls", f"tool call arguments are not valid JSON: {exc}"
            ) from exc
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise invalid(f"{where}.tool_calls", "tool call arguments must be a JSON object")
    return ToolCall(id=call_id or new_call_id(), name=name, arguments=arguments)


def _tools(body: ChatCompletionRequest) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    for i, tool in enumerate(body.tools or ()):
        if tool.type != "function" or tool.function is None:
            raise unsupported(f"tools.{i}.type", f"tools of type {tool.type!r}")
        spec: dict[str, Any] = {"name": tool.function.name}
        if tool.function.description:
            spec["description"] = tool.function.description
        if tool.function.parameters is not None:
            spec["parameters"] = tool.function.parameters
        tools.append({"type": "function", "function": spec})
    return tools


def _tool_choice(body: ChatCompletionRequest, tools: list[dict[str, Any]]) -> str:
    choice = body.tool_choice
    if choice is None:
        return "auto"
    name: str
    if isinstance(choice, str):
        name = choice
    else:
        if choice.type != "function" or choice.function is None:
            raise unsupported("tool_choice", f"tool_choice of type {choice.type!r}")
        name = choice.function.name
    if name in ("auto", "none"):
        return name
    if not tools:
        raise invalid("tool_choice", f"tool_choice {name!r} needs `tools`")
    if name != "required" and name not in {t["function"]["name"] for t in tools}:
        raise invalid("tool_choice", f"tool_choice names unknown tool {name!r}")
    return name


def _response_format(body: ChatCompletionRequest) -> dict[str, Any] | None:
    fmt = body.response_format
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return {"type": "json_object"}
    if fmt.json_schema is None or fmt.json_schema.schema_ is None:
        raise invalid("response_format.json_schema", "json_schema needs a `schema`")
    return {"type": "json_schema", "json_schema": {"schema": fmt.json_schema.schema_}}


# --- text completions --------------------------------------------------------------------


#: Prompts one /v1/completions request may carry (OpenAI's batch form).
MAX_PROMPTS = 64
Prompt = str | list[int]


def completion_arguments(body: CompletionRequest) -> tuple[list[Prompt], dict[str, Any]]:
    """(prompts, keyword arguments) for ``text_completion``; raises ``APIError`` (400).

    ``prompt`` is a string, a list of strings, token ids, or a list of token-id lists;
    each prompt is one entry of the returned list.
    """
    if body.suffix:
        raise unsupported("suffix", "suffix (fill in the middle)")
    if body.logprobs is not None and not 0 <= body.logprobs <= MAX_TEXT_LOGPROBS:
        raise invalid("logprobs", f"logprobs must be between 0 and {MAX_TEXT_LOGPROBS}")
    if body.best_of is not None and body.best_of != 1:
        raise unsupported("best_of", "best_of > 1")
    if body.max_tokens is not None and body.max_tokens < (0 if body.echo else 1):
        least = "0 (with echo)" if body.echo else "1 (0 only with echo)"
        raise invalid("max_tokens", f"max_tokens must be at least {least}")
    prompts = _prompts(body.prompt)
    kwargs = sampling_kwargs(body, body.max_tokens or None)
    if body.logprobs is not None:
        kwargs["top_logprobs"] = max(body.logprobs, 1)
    return prompts, kwargs


def _prompts(prompt: str | list[Any]) -> list[Prompt]:
    if isinstance(prompt, str):
        return _checked([prompt])
    items = list(prompt)
    if items and all(_is_token(t) for t in items):
        return _checked([items])  # one prompt of token ids
    batch: list[Prompt] = []
    for item in items:
        if isinstance(item, str) or (isinstance(item, list) and all(map(_is_token, item))):
            batch.append(item)
        else:
            raise invalid(
                "prompt",
                "prompt must be a string, a list of token ids, or a list whose items are each "
                "a string or a list of token ids",
            )
    return _checked(batch)


def _is_token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _checked(prompts: list[Prompt]) -> list[Prompt]:
    if not prompts:
        raise invalid("prompt", "prompt must not be empty")
    if len(prompts) > MAX_PROMPTS:
        raise invalid("prompt", f"at most {MAX_PROMPTS} prompts per request")
    for p in prompts:
        if not p:
            raise invalid("prompt", "prompt must not be empty")
        if not isinstance(p, str) and min(p) < 0:
            raise invalid("prompt", "token ids must not be negative")
    return prompts
