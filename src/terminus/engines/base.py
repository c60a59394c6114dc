"""What an engine is, and what a loaded model offers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from terminus.models.cache import ModelFiles
from terminus.models.card import ModelCard
from terminus.types import (
    CancelToken,
    ChatEvent,
    ChatRequest,
    Embeddings,
    EmbedRequest,
    TextRequest,
)
from terminus.types.common import Capability


@dataclass(frozen=True)
class Availability:
    """Whether an engine can run here, and if not, what is missing."""

    ok: bool
    detail: str
    version: str | None = None


@dataclass(frozen=True)
class LoadOptions:
    """How to load a model; ``None`` means the card's default or the engine's."""

    context_length: int | None = None  # tokens per parallel slot
    parallel: int | None = None  # concurrent sequences (llama.cpp slots)
    threads: int | None = None
    batch_size: int | None = None
    chat_template: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class LoadedModel(Protocol):
    card: ModelCard
    memory_bytes: int

    def close(self) -> None: ...


@runtime_checkable
class ChatModel(LoadedModel, Protocol):
    context_length: int
    parallel: int

    def chat(self, request: ChatRequest, cancel: CancelToken) -> Iterator[ChatEvent]:
        """Stream events; the last one is always ``Done``. Checks ``cancel`` between tokens."""
        ...


@runtime_checkable
class TextModel(LoadedModel, Protocol):
    def complete(self, request: TextRequest, cancel: CancelToken) -> Iterator[ChatEvent]:
        """Continue a raw prompt; same event grammar as chat."""
        ...


@runtime_checkable
class EmbedModel(LoadedModel, Protocol):
    dimensions: int

    def embed(self, request: EmbedRequest) -> Embeddings:
        """Vectors for ``request.inputs``, in order (float32, L2-normalized if asked)."""
        ...


class Engine(Protocol):
    name: ClassVar[str]
    capabilities: ClassVar[frozenset[Capability]]

    @classmethod
    def probe(cls) -> Availability:
        """Never raises: says whether the engine's dependencies are importable."""
        ...

    def estimate_memory(self, card: ModelCard, files: ModelFiles, options: LoadOptions) -> int:
        """Bytes a load would take (weights + caches), from file metadata only."""
        ...

    def load(self, card: ModelCard, files: ModelFiles, options: LoadOptions) -> LoadedModel: ...
