"""A split model behind the ordinary model interface: ``load_model(..., split=[...])``.

The model manager loads a chat model with this engine when the load options name ``split``
workers, so everything that runs on a loaded model (Python calls, ``serve`` and its APIs,
agents without tools) runs on one whose layers are spread over trusted machines. It offers
what Terminus's llama.cpp host offers: chat and raw completion, temperature / top-k / top-p /
seed sampling, stop strings, one request at a time. Tools, JSON schemas, images and
log-probabilities are typed errors, never silently dropped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from terminus.engines.base import Availability, LoadOptions
from terminus.errors import (
    CapabilityError,
    ContextLengthExceededError,
    EngineError,
    InvalidParameterError,
)
from terminus.models.cache import ModelFiles
from terminus.models.card import ModelCard
from terminus.models.gguf import estimate_load_bytes, validate_gguf
from terminus.p2p.identity import load_or_create_identity
from terminus.p2p.node import NodeRef, parse_node_ref
from terminus.p2p.peers import PeerBook
from terminus.p2p.split import (
    Sampling,
    SplitDone,
    SplitModel,
    SplitToken,
    default_local_share,
)
from terminus.types import (
    CancelToken,
    ChatEvent,
    ChatRequest,
    ContentDelta,
    Done,
    GenerationParams,
    Stats,
    StopReason,
    TextRequest,
)
from terminus.types.common import Capability

#: The load option that picks this engine: worker refs (``--split A,B``).
SPLIT_OPTION = "split"
DEFAULT_CONTEXT = 2048
# llama.cpp's own sampling defaults, used where neither the request nor the card sets one
DEFAULT_SAMPLING = {"temperature": 0.8, "top_k": 40, "top_p": 0.95}


def split_workers(value: Any) -> list[str]:
    """``"A,B"``, ``["A", "B"]`` or ``NodeRef`` objects → refs; else a typed error."""
    refs = value.split(",") if isinstance(value, str) else value
    if isinstance(refs, (list, tuple)):
        refs = [r.format() if isinstance(r, NodeRef) else r for r in refs]
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        raise InvalidParameterError("split takes worker refs: a list, or 'A,B'")
    cleaned = [r.strip() for r in refs if r.strip()]
    if not cleaned:
        raise InvalidParameterError("split names no worker")
    return cleaned


class SplitEngine:
    name: ClassVar[str] = "llamacpp-split"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.CHAT})

    def __init__(self, home: Path) -> None:
        self.home = home

    @classmethod
    def probe(cls) -> Availability:
        return Availability(True, "llama.cpp's RPC backend through Terminus's host program")

    def estimate_memory(self, card: ModelCard, files: ModelFiles, options: LoadOptions) -> int:
        """This machine's part: its share of the layers (an equal share by default)."""
        workers = split_workers(options.extra[SPLIT_OPTION])
        context = options.context_length or int(card.defaults.get("context_length", 0)) or 0
        estimate = estimate_load_bytes(validate_gguf(files.main), context or DEFAULT_CONTEXT)
        return int(estimate.total_bytes * _local_share(options, len(workers)))

    def load(self, card: ModelCard, files: ModelFiles, options: LoadOptions) -> SplitChatModel:
        if card.capability != Capability.CHAT or card.format != "gguf":
            raise CapabilityError(f"only GGUF chat models can be split; {card.id} is not one")
        book = PeerBook(self.home)
        refs: list[NodeRef] = [
            book.resolve(parse_node_ref(r)) for r in split_workers(options.extra[SPLIT_OPTION])
        ]
        shares = options.extra.get("tensor_split")
        context = options.context_length or int(
            card.defaults.get("context_length", DEFAULT_CONTEXT)
        )
        split = SplitModel(
            files.main,
            refs,
            load_or_create_identity(self.home),
            self.home,
            threads=options.threads or 1,
            context_length=context,
            local_share=options.extra.get("local_share"),
            tensor_split=[float(s) for s in _shares(shares)] if shares is not None else None,
        )
        split.start()
        return SplitChatModel(card, split, context, self.estimate_memory(card, files, options))


class SplitChatModel:
    """One request at a time: the host decodes one sequence."""

    parallel = 1

    def __init__(
        self, card: ModelCard, split: SplitModel, context_length: int, memory_bytes: int
    ) -> None:
        self.card = card
        self.split = split
        self.context_length = context_length
        self.memory_bytes = memory_bytes
        self._lock = threading.Lock()

    def chat(self, request: ChatRequest, cancel: CancelToken) -> Iterator[ChatEvent]:
        if request.tools and request.tool_choice != "none":
            raise CapabilityError(f"{self.card.id} runs split over workers: it cannot call tools")
        messages: list[tuple[str, str]] = []
        system = self.card.defaults.get("system_prompt")
        if system and not any(m.role == "system" for m in request.messages):
            messages.append(("system", str(system)))
        for message in request.messages:
            if message.images:
                raise CapabilityError(f"{self.card.id} runs split: it cannot read images")
            if message.role == "tool" or message.tool_calls:
                raise CapabilityError(f"{self.card.id} runs split: it cannot call tools")
            messages.append((message.role, message.content or ""))
        return self._run(messages, request.params, request.response_format, cancel)

    def complete(self, request: TextRequest, cancel: CancelToken) -> Iterator[ChatEvent]:
        if not isinstance(request.prompt, str):
            raise CapabilityError(f"{self.card.id} runs split: its prompt must be text, not tokens")
        return self._run(request.prompt, request.params, request.response_format, cancel)

    def close(self) -> None:
        self.split.close()

    def _run(
        self,
        prompt: str | Sequence[tuple[str, str]],
        params: GenerationParams,
        response_format: Any,
        cancel: CancelToken,
    ) -> Iterator[ChatEvent]:
        if response_format is not None and response_format.type != "text":
            raise CapabilityError(f"{self.card.id} runs split: it cannot follow a JSON schema")
        if params.top_logprobs:
            raise CapabilityError(f"{self.card.id} runs split: it has no log-probabilities")
        for name in ("min_p", "repeat_penalty", "lora_scale"):
            if getattr(params, name) is not None:
                raise InvalidParameterError(f"{name} is not available on a split model")
        merged = params.merged_over({**DEFAULT_SAMPLING, **self.card.defaults})
        sampling = Sampling(
            temperature=float(merged.temperature or 0.0),
            top_p=float(merged.top_p or 1.0),
            top_k=int(merged.top_k or 0),
            seed=0xFFFFFFFF if merged.seed is None else int(merged.seed),
        )
        max_tokens = merged.max_tokens or max(1, self.context_length // 4)
        return self._events(prompt, max_tokens, sampling, merged.stop, cancel)

    def _events(
        self,
        prompt: str | Sequence[tuple[str, str]],
        max_tokens: int,
        sampling: Sampling,
        stops: Sequence[str],
        cancel: CancelToken,
    ) -> Iterator[ChatEvent]:
        with self._lock:
            started = time.perf_counter()
            first: float | None = None
            text, sent = "", 0
            reason: StopReason = "length"
            done: SplitDone | None = None
            # a string here is a raw prompt (``complete``); chat turns are (role, content) pairs
            events = self.split.generate(prompt, max_tokens, chat=False, sampling=sampling)
            try:
                for event in events:
                    if isinstance(event, SplitDone):
                        done = event
                        reason = "stop" if event.stop_reason == "stop" else "length"
                        break
                    if not isinstance(event, SplitToken):
                        continue
                    if cancel.cancelled:
                        reason = "cancelled"
                        break
                    first = first if first is not None else time.perf_counter() - started
                    text += event.text
                    cut = _first_stop(text, stops)
                    if cut is not None:
                        text, reason = text[:cut], "stop"
                    # hold back what could be the start of a stop string
                    safe = len(text) if cut is not None else len(text) - _held(text, stops)
                    if safe > sent:
                        yield ContentDelta(text=text[sent:safe])
                        sent = safe
                    if cut is not None:
                        break
            except EngineError as exc:
                if "exceed the context" in exc.message:
                    raise ContextLengthExceededError(
                        f"prompt and answer exceed {self.card.id}'s context of "
                        f"{self.context_length} tokens"
                    ) from exc
                raise
            finally:
                events.close()  # stops the host's decoding if this loop ended early
            if reason == "length" and len(text) > sent:
                yield ContentDelta(text=text[sent:])
            total = time.perf_counter() - started
            completion = done.completion_tokens if done else 0
            yield Stats(
                prompt_tokens=done.prompt_tokens if done else 0,
                completion_tokens=completion,
                time_to_first_token_s=first,
                tokens_per_second=completion / (total - first) if first and total > first else None,
                total_s=total,
            )
            yield Done(stop_reason=reason)


def _local_share(options: LoadOptions, workers: int) -> float:
    share = options.extra.get("local_share")
    return float(share) if share is not None else default_local_share(workers)


def _shares(value: Any) -> list[str]:
    return value.split(",") if isinstance(value, str) else [str(v) for v in value]


def _first_stop(text: str, stops: Sequence[str]) -> int | None:
    found = [text.find(s) for s in stops if s and s in text]
    return min(found) if found else None


def _held(text: str, stops: Sequence[str]) -> int:
    """Length of the longest tail of ``text`` that begins some stop string."""
    held = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), held, -1):
            if stop.startswith(text[-n:]):
                held = n
                break
    return held
