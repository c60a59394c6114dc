"""Frozen request, response and event types shared by every layer and transport."""

from terminus.types.cancel import CancelToken
from terminus.types.chat import (
    ChatEvent,
    ChatRequest,
    Completion,
    ContentDelta,
    Done,
    GenerationParams,
    Message,
    ResponseFormat,
    Stats,
    StopReason,
    TextRequest,
    ThinkingDelta,
    TokenLogprob,
    TokenLogprobs,
    Tool,
    ToolCall,
    ToolCallEvent,
    ToolChoice,
    collect_completion,
    parse_messages,
)
from terminus.types.common import Capability
from terminus.types.embed import Embeddings, EmbedRequest
from terminus.types.info import LoadedModelInfo

__all__ = [
    "CancelToken",
    "Capability",
    "ChatEvent",
    "ChatRequest",
    "Completion",
    "ContentDelta",
    "Done",
    "EmbedRequest",
    "Embeddings",
    "LoadedModelInfo",
    "GenerationParams",
    "Message",
    "ResponseFormat",
    "Stats",
    "StopReason",
    "TextRequest",
    "ThinkingDelta",
    "TokenLogprob",
    "TokenLogprobs",
    "Tool",
    "ToolCall",
    "ToolCallEvent",
    "ToolChoice",
    "collect_completion",
    "parse_messages",
]
