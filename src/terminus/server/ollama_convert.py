"""Ollama's wire format: request schemas, and requests → Terminus arguments.

Field names follow Ollama's docs/api.md: ``options`` (Modelfile parameters such as
``num_predict``), ``format`` (``"json"`` or a JSON schema), ``tools`` (arguments as
objects, not strings), ``keep_alive`` (``"5m"``, seconds, ``0`` to unload, negative to
keep forever), ``think``. Durations in answers are nanoseconds. An option that would
change the output and that this server cannot honour is a 400 naming it; options
that only tune hardware (``num_gpu``, ``num_thread``, ``use_mmap``…) are accepted and
have no effect, as they mean nothing to a CPU llama.cpp build with its own threads.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import Field

from terminus.server.errors import invalid, unsupported
from terminus.server.schemas import Wire
from terminus.types import Message, Stats, ToolCall
from terminus.types.vision import image_from_base64

#: Option → the Terminus keyword it sets (same meaning, maybe another name).
SAMPLING_OPTIONS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "min_p": "min_p",
    "seed": "seed",
    "repeat_penalty": "repeat_penalty",
}
#: Options about memory, threads and devices: no effect on what is generated.
HARDWARE_OPTIONS = frozenset(
    {
        "numa",
        "num_batch",
        "num_gpu",
        "main_gpu",
        "low_vram",
        "f16_kv",
        "logits_all",
        "vocab_only",
        "use_mmap",
        "use_mlock",
        "embedding_only",
        "num_thread",
        "num_keep",
    }
)
#: Options at their neutral value change nothing, so they are accepted at that value.
NEUTRAL_OPTIONS: dict[str, Any] = {
    "mirostat": 0,
    "tfs_z": 1.0,
    "typical_p": 1.0,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
    "repeat_last_n": 64,
    "penalize_newline": True,
}
_DURATION_RE = re.compile(r"^(-?\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)?$")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class OllamaToolFunction(Wire):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None


class OllamaTool(Wire):
    type: str = "function"
    function: OllamaToolFunction


class OllamaCallFunction(Wire):
    name: str
    arguments: dict[str, Any] | str | None = None


class OllamaToolCall(Wire):
    id: str | None = None
    function: OllamaCallFunction


class OllamaMessage(Wire):
    role: str
    content: str | None = None
    images: list[str] | None = None
    thinking: str | None = None
    tool_calls: list[OllamaToolCall] | None = None
    tool_name: str | None = None
    tool_call_id: str | None = None


class OllamaGenerationRequest(Wire):
    """Fields /api/chat and /api/generate share."""

    model: str = Field(min_length=1)
    stream: bool | None = True
    format: str | dict[str, Any] | None = None
    options: dict[str, Any] | None = None
    keep_alive: str | float | None = None
    think: bool | str | None = None


class OllamaChatRequest(OllamaGenerationRequest):
    messages: list[OllamaMessage] | None = None
    tools: list[OllamaTool] | None = None


class OllamaGenerateRequest(OllamaGenerationRequest):
    prompt: str | None = None
    suffix: str | None = None
    system: str | None = None
    template: str | None = None
    context: list[int] | None = None
    raw: bool | None = None
    images: list[str] | None = None


class OllamaEmbedRequest(Wire):
    model: str = Field(min_length=1)
    input: str | list[str] | None = None
    truncate: bool | None = None
    options: dict[str, Any] | None = None
    keep_alive: str | float | None = None
    dimensions: int | None = None


class OllamaEmbeddingsRequest(Wire):
    """The legacy /api/embeddings: one ``prompt``, one ``embedding``."""

    model: str = Field(min_length=1)
    prompt: str | None = None
    options: dict[str, Any] | None = None
    keep_alive: str | float | None = None


class OllamaModelRequest(Wire):
    """/api/show, /api/pull, /api/delete: ``model`` (older clients send ``name``)."""

    model: str | None = None
    name: str | None = None
    stream: bool | None = True
    insecure: bool | None = None
    verbose: bool | None = None

    @property
    def target(self) -> str:
        name = self.model or self.name
        if not name:
            raise invalid("model", "model is required")
        return name


class OllamaCopyRequest(Wire):
    source: str = Field(min_length=1)
    destination: str = Field(min_length=1)


class OllamaCreateRequest(Wire):
    model: str | None = None
    name: str | None = None
    from_: str | None = Field(default=None, alias="from")
    system: str | None = None
    parameters: dict[str, Any] | None = None
    stream: bool | None = True
    # accepted so that they get a clear "unsupported" answer
    files: dict[str, Any] | None = None
    adapters: dict[str, Any] | None = None
    template: str | None = None
    license: str | list[str] | None = None
    messages: list[dict[str, Any]] | None = None
    quantize: str | None = None
    modelfile: str | None = None


# --- names, times and durations ----------------------------------------------------------


def strip_tag(name: str) -> str:
    """``smollm2:latest`` → ``smollm2``: Terminus models have no tags besides the default."""
    base, sep, tag = name.strip().rpartition(":")
    return base if sep and tag == "latest" and base else name.strip()


def tagged(model_id: str) -> str:
    return f"{model_id}:latest"


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def ns(seconds: float | None) -> int:
    return int(round((seconds or 0.0) * 1e9))


def keep_alive_seconds(value: str | float | None) -> float | None:
    """``keep_alive`` in seconds: None when absent, negative for "forever", 0 to unload."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION_RE.match(value.strip())
    if not match:
        raise invalid(
            "keep_alive", f"keep_alive {value!r} is not a duration such as 5m, 30s, 0 or -1"
        )
    return float(match.group(1)) * _UNIT_S[match.group(2) or "s"]


def timing_fields(stats: Stats | None, load_s: float, total_s: float) -> dict[str, Any]:
    """Ollama's counters and durations (ns) from a completion's stats."""
    prompt = stats.prompt_tokens if stats else 0
    produced = stats.completion_tokens if stats else 0
    first = stats.time_to_first_token_s if stats and stats.time_to_first_token_s else 0.0
    generating = stats.total_s if stats else 0.0
    return {
        "total_duration": ns(total_s),
        "load_duration": ns(load_s),
        "prompt_eval_count": prompt,
        "prompt_eval_duration": ns(first),
        "eval_count": produced,
        "eval_duration": ns(max(generating - first, 0.0)),
    }


# --- requests → Terminus ------------------------------------------------------------------


def sampling_kwargs(options: dict[str, Any] | None) -> dict[str, Any]:
    """``options`` → the sampling keywords of ``Terminus.completion``."""
    kwargs: dict[str, Any] = {}
    for name, value in (options or {}).items():
        if value is None or name in HARDWARE_OPTIONS or name == "num_ctx":
            continue
        where = f"options.{name}"
        if name in SAMPLING_OPTIONS:
            kwargs[SAMPLING_OPTIONS[name]] = value
        elif name == "num_predict":
            if not isinstance(value, int):
                raise invalid(where, "num_predict must be an integer")
            if value > 0:
                kwargs["max_tokens"] = value
            elif value == 0:
                raise invalid(where, "num_predict must be positive, or -1 for no limit")
            # -1 (no limit) and -2 (fill the context) both run to the context's end
        elif name == "stop":
            stops = [value] if isinstance(value, str) else value
            if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
                raise invalid(where, "stop must be a string or a list of strings")
            kwargs["stop"] = stops
        elif name in NEUTRAL_OPTIONS:
            if value != NEUTRAL_OPTIONS[name]:
                raise unsupported(where, f"option {name}={value!r}")
        else:
            raise unsupported(where, f"option {name!r}")
    return kwargs


def check_num_ctx(options: dict[str, Any] | None, loaded_context: int | None) -> None:
    """``num_ctx`` is honoured as far as the loaded context goes: more is a 400."""
    asked = (options or {}).get("num_ctx")
    if asked is None:
        return
    if not isinstance(asked, int) or asked < 1:
        raise invalid("options.num_ctx", "num_ctx must be a positive integer")
    if loaded_context is not None and asked > loaded_context:
        raise unsupported(
            "options.num_ctx",
            f"num_ctx={asked} beyond the {loaded_context} tokens per request this server "
            "loaded the model with (start it with a larger --context-length)",
        )


def response_format(fmt: str | dict[str, Any] | None) -> dict[str, Any] | None:
    if fmt is None or fmt == "":
        return None
    if fmt == "json":
        return {"type": "json_object"}
    if isinstance(fmt, dict):
        return {"type": "json_schema", "json_schema": {"schema": fmt}}
    raise invalid("format", f'format must be "json" or a JSON schema object, not {fmt!r}')


def tool_specs(tools: list[OllamaTool] | None) -> list[dict[str, Any]]:
    specs: list[dict[str, Any]] = []
    for i, tool in enumerate(tools or ()):
        if tool.type != "function":
            raise unsupported(f"tools.{i}.type", f"tools of type {tool.type!r}")
        spec: dict[str, Any] = {"name": tool.function.name}
        if tool.function.description:
            spec["description"] = tool.function.description
        if tool.function.parameters is not None:
            spec["parameters"] = tool.function.parameters
        specs.append({"type": "function", "function": spec})
    return specs


def _arguments(raw: dict[str, Any] | str | None, where: str) -> dict[str, Any]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except ValueError as exc:
            raise invalid(where, f"tool call arguments are not valid JSON: {exc}") from exc
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise invalid(where, "tool call arguments must be a JSON object")
    return raw


def to_messages(messages: list[OllamaMessage]) -> list[Message]:
    """Ollama messages as Terminus messages; tool results are matched to their calls.

    Ollama names a tool result by ``tool_name`` (not by call id): each result takes
    the id of the earliest unanswered call of that function.
    """
    out: list[Message] = []
    pending: list[ToolCall] = []
    for i, m in enumerate(messages):
        where = f"messages.{i}"
        if m.images and m.role != "user":
            raise invalid(f"{where}.images", "only user messages carry images")
        if m.role not in ("system", "user", "assistant", "tool"):
            raise invalid(f"{where}.role", f"unknown role {m.role!r}")
        if m.role == "assistant":
            calls = tuple(
                ToolCall(
                    id=c.id or "call_" + uuid.uuid4().hex[:24],
                    name=c.function.name,
                    arguments=_arguments(c.function.arguments, f"{where}.tool_calls.{j}"),
                )
                for j, c in enumerate(m.tool_calls or ())
            )
            pending.extend(calls)
            out.append(Message(role="assistant", content=m.content, tool_calls=calls))
        elif m.role == "tool":
            call = _answered(pending, m.tool_call_id, m.tool_name)
            call_id = call.id if call else m.tool_call_id or "call_" + uuid.uuid4().hex[:24]
            name = m.tool_name or (call.name if call else None)
            out.append(Message(role="tool", content=m.content, tool_call_id=call_id, name=name))
        else:
            images = _images(m.images, f"{where}.images")
            out.append(Message(role=m.role, content=m.content or "", images=images))  # type: ignore[arg-type]
    return out


def _images(images: list[str] | None, where: str) -> tuple[str, ...]:
    """Ollama's base64 images, decoded and checked (a bad one is a 400 naming it)."""
    return tuple(image_from_base64(b, f"{where}.{k}") for k, b in enumerate(images or ()))


def _answered(pending: list[ToolCall], call_id: str | None, name: str | None) -> ToolCall | None:
    for k, call in enumerate(pending):
        if (call_id and call.id == call_id) or (
            not call_id and (name is None or call.name == name)
        ):
            return pending.pop(k)
    return None


def tool_call_object(call: ToolCall, index: int) -> dict[str, Any]:
    """A call in Ollama's shape: arguments as an object."""
    return {
        "id": call.id,
        "function": {"index": index, "name": call.name, "arguments": call.arguments},
    }


def chat_kwargs(body: OllamaChatRequest) -> dict[str, Any]:
    kwargs = sampling_kwargs(body.options)
    tools = tool_specs(body.tools)
    if tools:
        kwargs["tools"] = tools
    kwargs["response_format"] = response_format(body.format)
    return kwargs


def generate_arguments(
    body: OllamaGenerateRequest, *, base_model: bool = False
) -> tuple[bool, Any, dict[str, Any]]:
    """(raw, prompt or messages, keywords) for /api/generate.

    A base model has no chat template: its prompt is always continued as it is.
    """
    for name in ("suffix", "template"):
        if getattr(body, name):
            raise unsupported(name, name)
    if body.context:
        raise unsupported("context", "context (token ids of an earlier answer)")
    images = _images(body.images, "images")
    if images and (body.raw or base_model):
        raise invalid("images", "a raw prompt takes no images (they need the chat template)")
    kwargs = sampling_kwargs(body.options)
    kwargs["response_format"] = response_format(body.format)
    if body.raw or base_model:
        if body.system:
            why = "a raw prompt" if body.raw else "a base model (no chat template)"
            raise invalid("system", f"{why} takes no system message")
        return True, body.prompt, kwargs
    messages: list[Message] = []
    if body.system:
        messages.append(Message(role="system", content=body.system))
    messages.append(Message(role="user", content=body.prompt, images=images))
    return False, messages, kwargs


def wants_thinking(think: bool | str | None) -> bool:
    """``think``: true, false, or a level (``"low"``…); only false hides the thinking."""
    if isinstance(think, str) and think not in ("low", "medium", "high"):
        raise invalid(
            "think", f'think must be true, false, "low", "medium" or "high", not {think!r}'
        )
    return think is not False
