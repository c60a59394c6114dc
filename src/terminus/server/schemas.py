"""OpenAI wire schemas for requests, tolerant of fields this server does not use.

Responses are plain dicts built in :mod:`terminus.server.chat`,
:mod:`terminus.server.completions` and :mod:`terminus.server.embeddings` (streamed
token by token or large, so they skip a validation pass). Range checks on sampling parameters are Terminus's own
(``GenerationParams``), so the limits are the same from Python and over HTTP.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request

from terminus.server.errors import validation_error

W = TypeVar("W", bound="Wire")


class Wire(BaseModel):
    """Unknown fields are kept aside, not rejected: clients send many we ignore."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


async def parse_body(request: Request, model: type[W]) -> W:
    """The body as JSON (``GuardMiddleware`` has refused any other Content-Type)."""
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        raise validation_error(exc.errors()) from exc


class FunctionCallIn(Wire):
    name: str
    arguments: str | dict[str, Any] | None = None


class ToolCallIn(Wire):
    id: str | None = None
    type: str = "function"
    function: FunctionCallIn


class ContentPart(Wire):
    type: str
    text: str | None = None
    image_url: dict[str, Any] | str | None = None


class ChatMessageIn(Wire):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCallIn] | None = None
    tool_call_id: str | None = None


class FunctionDef(Wire):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolIn(Wire):
    type: str = "function"
    function: FunctionDef | None = None


class ToolChoiceFunction(Wire):
    name: str


class NamedToolChoice(Wire):
    type: str = "function"
    function: ToolChoiceFunction | None = None


class JSONSchemaSpec(Wire):
    name: str | None = None
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormatIn(Wire):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchemaSpec | None = None


class StreamOptions(Wire):
    include_usage: bool | None = None


class Sampling(Wire):
    """Fields the chat and the text endpoints share."""

    model: str = Field(min_length=1)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    logit_bias: dict[str, Any] | None = None
    user: str | None = None
    # llama.cpp-server style extensions
    top_k: int | None = None
    min_p: float | None = None
    repeat_penalty: float | None = None
    #: False: compute the prompt afresh, not from what the slot ran before (llama.cpp's
    #: field; a reused prefix runs in other batch shapes and moves log-probabilities)
    cache_prompt: bool | None = None

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class ChatCompletionRequest(Sampling):
    messages: list[ChatMessageIn] = Field(min_length=1)
    max_completion_tokens: int | None = None
    tools: list[ToolIn] | None = None
    tool_choice: Literal["auto", "none", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormatIn | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    modalities: list[str] | None = None
    audio: dict[str, Any] | None = None
    prediction: dict[str, Any] | None = None
    functions: list[dict[str, Any]] | None = None
    function_call: str | dict[str, Any] | None = None


class CompletionRequest(Sampling):
    # a string, token ids, or a batch of strings and token-id lists (checked in convert)
    prompt: str | list[Any]
    max_tokens: int | None = 16  # OpenAI's default for /v1/completions
    echo: bool | None = None
    best_of: int | None = None
    suffix: str | None = None
    logprobs: int | None = None


class EmbeddingRequest(Wire):
    model: str = Field(min_length=1)
    # token ids are accepted here so that they get a clear "unsupported" answer
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = None
    user: str | None = None
