"""Chat request and event types.

A completion is a stream of events; the same sequence flows through every
transport (local, peer, HTTP), so renderers and clients never care where a
model runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from terminus.errors import InvalidParameterError, TerminusError

_FROZEN = ConfigDict(frozen=True, extra="forbid")

Role = Literal["system", "user", "assistant", "tool"]
StopReason = Literal["stop", "length", "cancelled", "error", "tool_calls"]


class ToolCall(BaseModel):
    model_config = _FROZEN
    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class Message(BaseModel):
    model_config = _FROZEN
    role: Role
    content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    #: Base64 PNG or JPEG bytes, shown to the model before ``content`` (see types.vision).
    images: tuple[str, ...] = ()

    @field_validator("images")
    @classmethod
    def _images_are_encoded(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from terminus.types.vision import check_encoded

        return tuple(check_encoded(v) for v in value)


class Tool(BaseModel):
    """A function the model may call; ``parameters`` is a JSON schema."""

    model_config = _FROZEN
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


ToolChoice = Literal["auto", "none", "required"] | str


class ResponseFormat(BaseModel):
    """Constrain output: any JSON object, or JSON matching a schema."""

    model_config = _FROZEN
    type: Literal["text", "json_object", "json_schema"] = "json_schema"
    json_schema: dict[str, Any] | None = None


class GenerationParams(BaseModel):
    """Sampling parameters; ranges are checked here so every engine sees sane values."""

    model_config = _FROZEN
    temperature: float | None = Field(default=None, ge=0.0, le=5.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    top_k: int | None = Field(default=None, ge=0)
    min_p: float | None = Field(default=None, ge=0.0, le=1.0)
    repeat_penalty: float | None = Field(default=None, gt=0.0, le=5.0)
    seed: int | None = Field(default=None, ge=0, lt=2**32)
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    stop: tuple[str, ...] = ()
    #: Report this many most likely next tokens (with log-probabilities) at each step.
    top_logprobs: int | None = Field(default=None, ge=1, le=1000)
    #: False: compute the whole prompt afresh instead of reusing a slot's cached prefix, so
    #: the numbers do not depend on what ran before (evaluation wants that; it costs speed).
    cache_prompt: bool | None = None
    #: Strength of a model's LoRA adapter for this request (0 = the base alone).
    lora_scale: float | None = Field(default=None, ge=0.0, le=4.0)

    @field_validator("stop")
    @classmethod
    def _stop_strings_not_empty(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not s for s in value):
            raise ValueError("stop strings must not be empty")
        if len(value) > 16:
            raise ValueError("at most 16 stop strings")
        return value

    def merged_over(self, defaults: dict[str, Any]) -> GenerationParams:
        """These params, with unset fields taken from a card's defaults."""
        known = {k: v for k, v in defaults.items() if k in GenerationParams.model_fields}
        mine = self.model_dump(exclude_defaults=True)
        return GenerationParams.model_validate({**known, **mine})


class ChatRequest(BaseModel):
    model_config = _FROZEN
    model: str
    messages: tuple[Message, ...]
    params: GenerationParams = GenerationParams()
    response_format: ResponseFormat | None = None
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice = "auto"

    @field_validator("messages")
    @classmethod
    def _at_least_one(cls, value: tuple[Message, ...]) -> tuple[Message, ...]:
        if not value:
            raise ValueError("messages must not be empty")
        return value


class TextRequest(BaseModel):
    """Raw text continuation (no chat template): for base models and prompt experiments.

    ``prompt`` is text, or the model's token ids used exactly as given (no BOS added).
    """

    model_config = _FROZEN
    model: str
    prompt: str | list[Annotated[int, Field(ge=0)]] = Field(min_length=1)
    params: GenerationParams = GenerationParams()
    response_format: ResponseFormat | None = None


# --- events ---------------------------------------------------------------


class ContentDelta(BaseModel):
    model_config = _FROZEN
    type: Literal["content"] = "content"
    text: str


class ThinkingDelta(BaseModel):
    model_config = _FROZEN
    type: Literal["thinking"] = "thinking"
    text: str


class ToolCallEvent(BaseModel):
    model_config = _FROZEN
    type: Literal["tool_call"] = "tool_call"
    call: ToolCall


class TokenLogprob(BaseModel):
    model_config = _FROZEN
    token: str
    logprob: float


class TokenLogprobs(BaseModel):
    """The token just generated and the most likely alternatives at that step.

    Emitted before the text of that token, only when ``top_logprobs`` was asked for.
    Log-probabilities are natural logs over the full vocabulary, before sampling.
    """

    model_config = _FROZEN
    type: Literal["logprobs"] = "logprobs"
    token: str
    logprob: float
    top: tuple[TokenLogprob, ...] = ()


class Stats(BaseModel):
    model_config = _FROZEN
    type: Literal["stats"] = "stats"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    time_to_first_token_s: float | None = None
    tokens_per_second: float | None = None
    total_s: float = 0.0
    #: Speculative decoding: tokens proposed by the draft (a draft model or n-gram lookup)
    #: and how many of them the model kept; ``None`` when the model decoded without one.
    draft_tokens: int | None = None
    draft_accepted: int | None = None

    @property
    def acceptance_rate(self) -> float | None:
        """Share of drafted tokens the model kept (``None`` without speculative decoding)."""
        if not self.draft_tokens:
            return None
        return (self.draft_accepted or 0) / self.draft_tokens

    def __str__(self) -> str:
        """The line ``terminus run`` prints: ``12 prompt + 30 completion tokens, … 0.35 s``."""
        parts = [f"{self.prompt_tokens} prompt + {self.completion_tokens} completion tokens"]
        if self.time_to_first_token_s is not None:
            parts.append(f"first token {self.time_to_first_token_s * 1000:.0f} ms")
        if self.tokens_per_second:
            parts.append(f"{self.tokens_per_second:.1f} tok/s")
        if self.draft_tokens:
            parts.append(f"{self.draft_accepted or 0}/{self.draft_tokens} drafted tokens kept")
        parts.append(f"{self.total_s:.2f} s")
        return ", ".join(parts)


class Done(BaseModel):
    model_config = _FROZEN
    type: Literal["done"] = "done"
    stop_reason: StopReason
    error: str | None = None


ChatEvent = Annotated[
    ContentDelta | ThinkingDelta | ToolCallEvent | TokenLogprobs | Stats | Done,
    Field(discriminator="type"),
]


class Completion(BaseModel):
    """A whole completion, folded from its events."""

    model_config = _FROZEN
    text: str
    thinking: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    stats: Stats | None = None
    stop_reason: StopReason
    error: str | None = None
    logprobs: tuple[TokenLogprobs, ...] = ()

    def message(self) -> Message:
        """The assistant message to append to the history for the next turn."""
        return Message(role="assistant", content=self.text or None, tool_calls=self.tool_calls)

    def parsed_json(self) -> Any:
        """Parse the text as JSON (for ``response_format`` requests)."""
        return json.loads(self.text)


def collect_completion(events: Iterable[Any]) -> Completion:
    text: list[str] = []
    thinking: list[str] = []
    calls: list[ToolCall] = []
    logprobs: list[TokenLogprobs] = []
    stats: Stats | None = None
    done: Done | None = None
    for event in events:
        if isinstance(event, ContentDelta):
            text.append(event.text)
        elif isinstance(event, ThinkingDelta):
            thinking.append(event.text)
        elif isinstance(event, ToolCallEvent):
            calls.append(event.call)
        elif isinstance(event, TokenLogprobs):
            logprobs.append(event)
        elif isinstance(event, Stats):
            stats = event
        elif isinstance(event, Done):
            done = event
    if done is None:
        done = Done(stop_reason="error", error="stream ended without a done event")
    return Completion(
        text="".join(text),
        thinking="".join(thinking),
        tool_calls=tuple(calls),
        stats=stats,
        stop_reason=done.stop_reason,
        error=done.error,
        logprobs=tuple(logprobs),
    )


MessagesLike = str | Sequence[Message | dict[str, Any]]


def parse_messages(messages: MessagesLike, system: str | None = None) -> tuple[Message, ...]:
    """Accept a bare prompt, OpenAI-style dicts or Message objects."""
    if isinstance(messages, str):
        parsed = [Message(role="user", content=messages)]
    else:
        try:
            parsed = [m if isinstance(m, Message) else _message_from_dict(m) for m in messages]
        except TerminusError:
            raise  # already typed (a bad image is a ChatImageError)
        except ValidationError as exc:
            raise InvalidParameterError(f"invalid message: {_first_error(exc)}") from exc
        except (ValueError, TypeError, KeyError) as exc:  # e.g. tool-call arguments not JSON
            raise InvalidParameterError(f"invalid message: {exc}") from exc
    if system is not None:
        parsed = [Message(role="system", content=system)] + [
            m for m in parsed if m.role != "system"
        ]
    return tuple(parsed)


def _message_from_dict(data: dict[str, Any]) -> Message:
    calls = data.get("tool_calls") or ()
    if calls:
        data = dict(data)
        data["tool_calls"] = tuple(_tool_call_from_openai(c) for c in calls)
    if isinstance(data.get("content"), list) or data.get("images"):
        from terminus.types.vision import split_content

        data = split_content(data)
    return Message.model_validate(data)


def _tool_call_from_openai(call: Any) -> Any:
    if isinstance(call, ToolCall) or not isinstance(call, dict) or "function" not in call:
        return call
    function = call["function"]
    arguments = function.get("arguments") or {}
    if isinstance(arguments, str):
        arguments = json.loads(arguments) if arguments.strip() else {}
    return {"id": call.get("id", ""), "name": function["name"], "arguments": arguments}


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()))
    return f"{where}: {err.get('msg')}" if where else str(err.get("msg"))


def validation_message(exc: ValidationError) -> str:
    return _first_error(exc)
