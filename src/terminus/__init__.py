"""Terminus: local-first, peer-to-peer AI.

``import terminus`` is cheap: it imports no engine and no heavy library. The
names below are resolved on first use (PEP 562), as huggingface_hub does.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from terminus._version import __version__ as __version__

_LAZY = {
    "Terminus": "terminus.client.sync",
    "AsyncTerminus": "terminus.client.aio",
    "CompletionStream": "terminus.client.streams",
    "AsyncCompletionStream": "terminus.client.streams",
    "LoadOptions": "terminus.engines.base",
    "Capability": "terminus.types.common",
    "ChatRequest": "terminus.types.chat",
    "Completion": "terminus.types.chat",
    "ContentDelta": "terminus.types.chat",
    "Done": "terminus.types.chat",
    "GenerationParams": "terminus.types.chat",
    "Message": "terminus.types.chat",
    "ResponseFormat": "terminus.types.chat",
    "Stats": "terminus.types.chat",
    "ThinkingDelta": "terminus.types.chat",
    "Tool": "terminus.types.chat",
    "ToolCall": "terminus.types.chat",
    "ToolCallEvent": "terminus.types.chat",
    "ModelCard": "terminus.models.card",
    "ModelHandle": "terminus.client.handle",
    "AsyncModelHandle": "terminus.client.handle",
    "TokenLogprobs": "terminus.types.chat",
    "evaluate": "terminus.eval.api",
    "RunConfig": "terminus.eval.runner",
    "errors": "terminus.errors",
}

if TYPE_CHECKING:
    from terminus import errors
    from terminus.client.aio import AsyncTerminus
    from terminus.client.handle import AsyncModelHandle, ModelHandle
    from terminus.client.streams import AsyncCompletionStream, CompletionStream
    from terminus.client.sync import Terminus
    from terminus.engines.base import LoadOptions
    from terminus.eval.api import evaluate
    from terminus.eval.runner import RunConfig
    from terminus.models.card import ModelCard
    from terminus.types.chat import (
        ChatRequest,
        Completion,
        ContentDelta,
        Done,
        GenerationParams,
        Message,
        ResponseFormat,
        Stats,
        ThinkingDelta,
        TokenLogprobs,
        Tool,
        ToolCall,
        ToolCallEvent,
    )
    from terminus.types.common import Capability


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'terminus' has no attribute {name!r}")
    module = importlib.import_module(module_name)
    value = module if name == "errors" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "AsyncCompletionStream",
    "AsyncModelHandle",
    "AsyncTerminus",
    "Capability",
    "ChatRequest",
    "Completion",
    "CompletionStream",
    "ContentDelta",
    "Done",
    "GenerationParams",
    "LoadOptions",
    "Message",
    "ModelCard",
    "ModelHandle",
    "RunConfig",
    "ResponseFormat",
    "Stats",
    "Terminus",
    "ThinkingDelta",
    "TokenLogprobs",
    "Tool",
    "ToolCall",
    "ToolCallEvent",
    "errors",
    "evaluate",
]
