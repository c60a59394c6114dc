"""The asyncio client: the same implementation as :class:`Terminus`, awaited."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from terminus.agents import AsyncAgentRun
from terminus.client.adapt import AsyncAdaptMixin
from terminus.client.image import AsyncImageMixin
from terminus.client.model_arg import model_keyword
from terminus.client.scoring import AsyncScoringMixin
from terminus.client.speech import AsyncSpeechMixin
from terminus.client.streams import AsyncCompletionStream
from terminus.client.sync import Terminus
from terminus.types import Embeddings, LoadedModelInfo
from terminus.types.chat import MessagesLike

if TYPE_CHECKING:
    from terminus.client.handle import AsyncModelHandle


class AsyncTerminus(AsyncAdaptMixin, AsyncSpeechMixin, AsyncImageMixin, AsyncScoringMixin):
    """``async`` face of :class:`Terminus`; blocking work runs in threads."""

    def __init__(self, client: Terminus | None = None, **kwargs: Any) -> None:
        self.sync = client or Terminus(**kwargs)
        self.models = self.sync.models
        self.catalog = self.sync.catalog

    async def load_model(self, model: str | None = None, **kwargs: Any) -> LoadedModelInfo:
        return await asyncio.to_thread(self.sync.load_model, model, **kwargs)

    async def unload_model(self, model: str | None = None) -> bool:
        return await asyncio.to_thread(self.sync.unload_model, model)

    async def loaded_models(self) -> list[LoadedModelInfo]:
        return await asyncio.to_thread(self.sync.loaded_models)

    def model(self, name: str | None = None) -> AsyncModelHandle:
        """A handle bound to one model: ``await t.model("qwen").completion("Hi").result()``."""
        from terminus.client.handle import AsyncModelHandle

        return AsyncModelHandle(self, name)

    @model_keyword(1)
    def completion(
        self, messages: MessagesLike, *, model: str | None = None, **kwargs: Any
    ) -> AsyncCompletionStream:
        """Like :meth:`Terminus.completion`; iterate with ``async for``."""
        request = self.sync.chat_request(messages, model=model, **kwargs)
        return AsyncCompletionStream(lambda cancel: self.sync.stream_request(request, cancel))

    def agent(
        self, messages: MessagesLike, *, model: str | None = None, tools: Any = (), **options: Any
    ) -> AsyncAgentRun:
        """Like :meth:`Terminus.agent`; iterate with ``async for`` or await ``.aresult()``."""
        agent = self.sync._agent(model, tools, options)
        return AsyncAgentRun(lambda cancel: agent.events(messages, cancel))

    @model_keyword(1)
    def text_completion(
        self, prompt: str | Sequence[int], *, model: str | None = None, **kwargs: Any
    ) -> AsyncCompletionStream:
        """Like :meth:`Terminus.text_completion`; iterate with ``async for``."""
        from terminus.client.requests import build_text_request

        request = build_text_request(
            model or self.sync.default_model,
            prompt if isinstance(prompt, str) else list(prompt),
            **kwargs,
        )
        return AsyncCompletionStream(lambda cancel: self.sync.stream_request(request, cancel))

    @model_keyword(1)
    async def embed(
        self, texts: str | list[str], *, model: str | None = None, normalize: bool = True
    ) -> Embeddings:
        return await asyncio.to_thread(self.sync.embed, texts, model=model, normalize=normalize)

    async def doctor(self) -> dict[str, Any]:
        return await asyncio.to_thread(self.sync.doctor)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.sync.close)

    async def __aenter__(self) -> AsyncTerminus:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
