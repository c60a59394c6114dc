from __future__ import annotations

from collections.abc import Iterator

from terminus.engines.base import LoadOptions
from terminus.runtime.manager import ModelManager
from terminus.types import (
    CancelToken,
    ChatEvent,
    ChatRequest,
    Embeddings,
    EmbedRequest,
    LoadedModelInfo,
    TextRequest,
)


class LocalTransport:
    """Runs requests in this process through a ModelManager."""

    name = "local"

    def __init__(self, manager: ModelManager) -> None:
        self.manager = manager

    def chat(self, request: ChatRequest, cancel: CancelToken) -> Iterator[ChatEvent]:
        return self.manager.chat(request, cancel)

    def complete(self, request: TextRequest, cancel: CancelToken) -> Iterator[ChatEvent]:
        return self.manager.complete(request, cancel)

    def embed(self, request: EmbedRequest) -> Embeddings:
        return self.manager.embed(request)

    def load(self, model: str, options: LoadOptions) -> LoadedModelInfo:
        return self.manager.load(model, options)

    def unload(self, model: str) -> bool:
        return self.manager.unload(model)

    def loaded(self) -> list[LoadedModelInfo]:
        return self.manager.loaded()

    def close(self) -> None:
        self.manager.unload_all()
