"""What a consumer may ask a provider: each operation's request and result types.

Forwarding is generic: a request is validated into its pydantic type on arrival,
run on the provider's transport, and its events or result validated again on the
consumer's side, so a new capability needs one line here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import TypeAdapter

from terminus.p2p.status import ProviderStatus, StatusRequest
from terminus.p2p.tool_ops import ToolCallOutcome, ToolCallRequest, ToolListing, ToolListRequest
from terminus.p2p.wire import decode_body, json_default
from terminus.types import ChatEvent, ChatRequest, Embeddings, EmbedRequest, TextRequest
from terminus.types.image import ImageEvent, ImageRequest
from terminus.types.speech import (
    OcrRequest,
    OcrResult,
    SpeakRequest,
    SpeechChunk,
    TranscribeRequest,
    Transcription,
    TranslateRequest,
)


@dataclass(frozen=True)
class Op:
    name: str
    request: Any
    result: Any
    streams: bool

    @property
    def request_adapter(self) -> TypeAdapter[Any]:
        return _adapter(self.request)

    @property
    def result_adapter(self) -> TypeAdapter[Any]:
        return _adapter(self.result)


OPS: dict[str, Op] = {
    op.name: op
    for op in (
        Op("chat", ChatRequest, ChatEvent, True),
        Op("complete", TextRequest, ChatEvent, True),
        Op("translate", TranslateRequest, ChatEvent, True),
        Op("speak", SpeakRequest, SpeechChunk, True),
        Op("generate_image", ImageRequest, ImageEvent, True),
        Op("embed", EmbedRequest, Embeddings, False),
        Op("transcribe", TranscribeRequest, Transcription, False),
        Op("ocr", OcrRequest, OcrResult, False),
        # peer tools: served by the provider's ToolHost, not its transport
        Op("list_tools", ToolListRequest, ToolListing, False),
        Op("call_tool", ToolCallRequest, ToolCallOutcome, False),
        # answered by the provider itself, not its transport (models, load)
        Op("status", StatusRequest, ProviderStatus, False),
    )
}


@cache
def _adapter(kind: Any) -> TypeAdapter[Any]:
    return TypeAdapter(kind)


def dump_value(op: Op, value: Any, *, result: bool) -> Any:
    if result and op.result is Embeddings:
        return {
            "model": value.model,
            "vectors": value.vectors,
            "prompt_tokens": value.prompt_tokens,
            "total_s": value.total_s,
        }
    adapter = op.result_adapter if result else op.request_adapter
    return adapter.dump_python(value, mode="python")


def load_value(op: Op, data: Any, *, result: bool) -> Any:
    if result and op.result is Embeddings:
        import numpy as np

        return Embeddings(
            model=str(data["model"]),
            vectors=np.asarray(data["vectors"], dtype=np.float32),
            prompt_tokens=int(data["prompt_tokens"]),
            total_s=float(data["total_s"]),
        )
    adapter = op.result_adapter if result else op.request_adapter
    return adapter.validate_python(data)


def request_body(op: Op, request: Any) -> bytes:
    """The exact bytes a token signs: the request as JSON (tagged bytes and arrays)."""
    return json.dumps(
        dump_value(op, request, result=False), default=json_default, separators=(",", ":")
    ).encode()


def parse_request(op: Op, body: bytes) -> Any:
    return load_value(op, decode_body(b'{"v":' + body + b"}")["v"], result=False)


def run_op(transport: Any, op: Op, request: Any, cancel: Any) -> Iterator[Any] | Any:
    """Call ``op`` on a local transport (streams get the cancel token)."""
    method: Callable[..., Any] = getattr(transport, op.name)
    if op.streams:
        return method(request, cancel)
    return method(request)
