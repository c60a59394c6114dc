"""A scripted engine for fast tests: no model, predictable output, every call recorded.

Its card's ``defaults`` script it: ``replies`` (cycled), ``token_delay_s``,
``context_length`` (in words) and ``tool_arguments``; with no replies it echoes
the last user message. The contract tests run it beside the real engines, so it
must keep to the same event grammar.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar

from terminus.engines.base import Availability, LoadOptions
from terminus.engines.tool_prompting import new_call_id
from terminus.errors import ContextLengthExceededError, InvalidParameterError
from terminus.models.cache import ModelFiles
from terminus.models.card import ModelCard
from terminus.types import (
    CancelToken,
    ChatEvent,
    ChatRequest,
    ContentDelta,
    Done,
    Embeddings,
    EmbedRequest,
    Stats,
    StopReason,
    TokenLogprob,
    TokenLogprobs,
    ToolCall,
    ToolCallEvent,
)
from terminus.types.common import Capability


class FakeEngine:
    name: ClassVar[str] = "fake"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.CHAT, Capability.EMBED})
    #: Every request any fake model received, in order (tests inspect it).
    calls: ClassVar[list[ChatRequest]] = []
    loads: ClassVar[list[str]] = []

    @classmethod
    def probe(cls) -> Availability:
        return Availability(True, "scripted fake engine for tests", "1")

    def estimate_memory(self, card: ModelCard, files: ModelFiles, options: LoadOptions) -> int:
        return int(card.defaults.get("memory_bytes", 1024))

    def load(
        self, card: ModelCard, files: ModelFiles, options: LoadOptions
    ) -> FakeChatModel | FakeEmbedModel:
        FakeEngine.loads.append(card.id)
        memory = self.estimate_memory(card, files, options)
        if card.capability == Capability.EMBED:
            return FakeEmbedModel(card, memory)
        return FakeChatModel(card, options, memory)


class FakeEmbedModel:
    """Hashed bag-of-words vectors: texts sharing words get similar vectors, which is
    enough for retrieval tests to mean something."""

    def __init__(self, card: ModelCard, memory: int) -> None:
        self.card = card
        self.memory_bytes = memory
        self.dimensions = int(card.defaults.get("dimensions", 64))
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def embed(self, request: EmbedRequest) -> Embeddings:
        import numpy as np

        started = time.perf_counter()
        vectors = np.zeros((len(request.inputs), self.dimensions), dtype=np.float32)
        tokens = 0
        for row, text in enumerate(request.inputs):
            words = re.findall(r"\w+", text.lower())
            tokens += len(words)
            for word in words:
                digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                vectors[row, int.from_bytes(digest[:4], "little") % self.dimensions] += 1.0
        if request.normalize:
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors /= np.where(norms == 0, 1.0, norms)
        return Embeddings(request.model, vectors, tokens, time.perf_counter() - started)


class FakeChatModel:
    def __init__(self, card: ModelCard, options: LoadOptions, memory: int) -> None:
        self.card = card
        self.memory_bytes = memory
        self.context_length = options.context_length or int(
            card.defaults.get("context_length", 512)
        )
        self.parallel = options.parallel or 4
        replies = card.defaults.get("replies") or []
        self._replies = itertools.cycle(replies) if replies else None
        self._lock = threading.Lock()
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def _next_reply(self, request: ChatRequest) -> str:
        with self._lock:
            if self._replies is not None:
                return str(next(self._replies))
        users = [m.content or "" for m in request.messages if m.role == "user"]
        return users[-1] if users else ""

    def _logprobs(self, token: str, k: int) -> TokenLogprobs:
        """The scripted ``next_token_logprobs`` (token → logprob), else the token at log 1 = 0."""
        scripted = dict(self.card.defaults.get("next_token_logprobs") or {token: 0.0})
        top = sorted(scripted.items(), key=lambda kv: -kv[1])[:k]
        return TokenLogprobs(
            token=token,
            logprob=float(scripted.get(token, min(scripted.values()))),
            top=tuple(TokenLogprob(token=t, logprob=float(lp)) for t, lp in top),
        )

    def chat(self, request: ChatRequest, cancel: CancelToken) -> Iterator[ChatEvent]:
        FakeEngine.calls.append(request)
        started = time.perf_counter()
        prompt_words = sum(len((m.content or "").split()) for m in request.messages)
        if prompt_words > self.context_length:
            raise ContextLengthExceededError(
                f"prompt is {prompt_words} tokens; the context holds {self.context_length}"
            )
        if request.response_format is not None and request.response_format.json_schema:
            reply = json.dumps(_example_for(request.response_format.json_schema))
        else:
            reply = self._next_reply(request)
        delay = float(self.card.defaults.get("token_delay_s", 0.0))
        limit = request.params.max_tokens
        produced = 0
        reason: StopReason = "stop"
        wants_tool = request.tools and request.tool_choice not in ("auto", "none")
        if wants_tool:
            tool = next(
                (t for t in request.tools if t.name == request.tool_choice), request.tools[0]
            )
            args = dict(self.card.defaults.get("tool_arguments", {}))
            yield ToolCallEvent(call=ToolCall(id=new_call_id(), name=tool.name, arguments=args))
            produced = len(json.dumps({"name": tool.name, "arguments": args}).split())
            reason = "tool_calls"
        else:
            for i, word in enumerate(reply.split(" ")):
                if cancel.cancelled:
                    reason = "cancelled"
                    break
                if limit is not None and produced >= limit:
                    reason = "length"
                    break
                if delay:
                    time.sleep(delay)
                text = word if i == 0 else " " + word
                if request.params.top_logprobs:
                    yield self._logprobs(text, request.params.top_logprobs)
                yield ContentDelta(text=text)
                produced += 1
            if cancel.cancelled:
                reason = "cancelled"
        elapsed = time.perf_counter() - started
        yield Stats(
            prompt_tokens=prompt_words,
            completion_tokens=produced,
            time_to_first_token_s=delay,
            tokens_per_second=None,
            total_s=elapsed,
        )
        yield Done(stop_reason=reason)


def _example_for(schema: dict[str, Any]) -> Any:
    """A minimal instance of a JSON schema (objects, arrays, scalars, enums)."""
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type", "object")
    if kind == "object":
        props = schema.get("properties", {})
        return {k: _example_for(v) for k, v in props.items()}
    if kind == "array":
        return [_example_for(schema.get("items", {"type": "string"}))]
    examples: dict[str, Any] = {
        "string": "x",
        "integer": 1,
        "number": 1.0,
        "boolean": True,
        "null": None,
    }
    if kind not in examples:
        raise InvalidParameterError(f"fake engine cannot build a {kind!r}")
    return examples[kind]
