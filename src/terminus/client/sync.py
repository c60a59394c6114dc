"""The synchronous client. The asyncio client wraps this one; there is one implementation."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from terminus.agents import Agent, AgentRun
from terminus.client.adapt import AdaptMixin
from terminus.client.delegation import delegated_transport
from terminus.client.image import ImageMixin
from terminus.client.model_arg import model_keyword
from terminus.client.models_api import ModelsAPI
from terminus.client.requests import (
    ResponseFormatLike,
    ToolLike,
    build_chat_request,
    build_text_request,
)
from terminus.client.scoring import ScoringMixin
from terminus.client.speech import SpeechMixin
from terminus.client.streams import CompletionStream
from terminus.engines.base import Engine, LoadOptions
from terminus.errors import InvalidParameterError
from terminus.models.cache import ModelCache
from terminus.models.catalog import Catalog
from terminus.models.progress import NullProgress, Progress, TqdmProgress
from terminus.paths import terminus_home
from terminus.runtime.manager import ModelManager
from terminus.runtime.memory import resolve_budget, resolve_policy
from terminus.transports import LocalTransport, Transport
from terminus.types import (
    CancelToken,
    ChatEvent,
    ChatRequest,
    Embeddings,
    EmbedRequest,
    LoadedModelInfo,
    TextRequest,
)
from terminus.types.chat import MessagesLike, validation_message

if TYPE_CHECKING:
    from terminus.client.handle import ModelHandle

DEFAULT_MODEL = "default"
DEFAULT_EMBED_MODEL = "all-minilm-l6-v2"
EMBED_MODEL_ENV = "TERMINUS_EMBED_MODEL"
MODEL_ENV = "TERMINUS_MODEL"
OFFLINE_ENV = "TERMINUS_OFFLINE"
_SAMPLING_KEYS = ("temperature", "top_p", "top_k", "min_p", "repeat_penalty", "seed", "max_tokens")


def _offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").lower() in ("1", "true", "yes", "on")


class Terminus(AdaptMixin, SpeechMixin, ImageMixin, ScoringMixin):
    """Local-first AI: load verified models and run them here, on a peer, or on a server.

    >>> with Terminus() as t:
    ...     print(t.completion("Why is the sky blue?").text)
    ...     qwen = t.model("qwen")              # or name the model on every call
    ...     print(qwen.completion("Bonjour !", temperature=0).text)
    """

    def __init__(
        self,
        *,
        home: str | os.PathLike[str] | None = None,
        transport: Transport | None = None,
        memory_policy: str | None = None,
        memory_budget: int | str | None = None,
        allow_download: bool | None = None,
        progress: bool | Progress = False,
        default_model: str | None = None,
        delegate: str | Sequence[str] | None = None,
        delegate_fallback: bool = False,
    ) -> None:
        """``delegate``: a provider's ``terminus:node/…`` reference (or known node id); every
        request then runs there, and locally too when ``delegate_fallback`` is set and the
        provider cannot be reached (docs/p2p.md). A list of providers is a pool: each
        request goes to the least busy one that shares its model."""
        self.home: Path = terminus_home(home)
        self.catalog = Catalog(self.home / "cards")
        self.cache = ModelCache(self.home)
        self.default_model = default_model or os.environ.get(MODEL_ENV) or DEFAULT_MODEL
        downloads = (not _offline()) if allow_download is None else allow_download
        self._progress = progress

        self.manager = ModelManager(
            self.catalog,
            self.cache,
            budget_bytes=resolve_budget(memory_budget),
            memory_policy=resolve_policy(memory_policy),
            allow_download=downloads,
            progress_factory=self._progress_factory,
        )
        # load_model(..., split=[...]) runs the model's layers over trusted RPC workers
        self.manager.engine_overrides["split"] = self._split_engine
        self.transport: Transport = transport or LocalTransport(self.manager)
        if delegate is not None:
            self.transport = delegated_transport(
                self, delegate, self.transport if delegate_fallback else None
            )
        self.models = ModelsAPI(self.catalog, self.cache, self.manager, self._progress_factory)

    def _split_engine(self) -> Engine:
        from terminus.p2p.split_engine import SplitEngine  # peers only when a split is asked

        return SplitEngine(self.home)

    def _progress_factory(self) -> Progress:
        if self._progress is True:
            return TqdmProgress()
        if self._progress is False:
            return NullProgress()
        return self._progress

    # -- lifecycle ----------------------------------------------------------------

    def load_model(
        self,
        model: str | None = None,
        *,
        context_length: int | None = None,
        parallel: int | None = None,
        threads: int | None = None,
        **extra: Any,
    ) -> LoadedModelInfo:
        """Load a model (fetching and verifying it first if needed); idempotent."""
        options = LoadOptions(
            context_length=context_length, parallel=parallel, threads=threads, extra=extra
        )
        return self.transport.load(model or self.default_model, options)

    def unload_model(self, model: str | None = None) -> bool:
        return self.transport.unload(model or self.default_model)

    def loaded_models(self) -> list[LoadedModelInfo]:
        return self.transport.loaded()

    def close(self) -> None:
        self.close_scorers()
        self.transport.close()

    def __enter__(self) -> Terminus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- inference ------------------------------------------------------------------

    def model(self, name: str | None = None) -> ModelHandle:
        """A handle bound to one model: ``t.model("qwen").completion("Hi")``."""
        from terminus.client.handle import ModelHandle

        return ModelHandle(self, name)

    @model_keyword(1)
    def chat_request(
        self,
        messages: MessagesLike,
        *,
        model: str | None = None,
        system: str | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        top_k: int | None = None,
        min_p: float | None = None,
        repeat_penalty: float | None = None,
        seed: int | None = None,
        max_tokens: int | None = None,
        stop: str | Sequence[str] | None = None,
        response_format: ResponseFormatLike | None = None,
        tools: Sequence[ToolLike] | None = None,
        tool_choice: str = "auto",
        top_logprobs: int | None = None,
        cache_prompt: bool | None = None,
        lora_scale: float | None = None,
    ) -> ChatRequest:
        """Validate arguments into a request (raises ``InvalidParameterError``)."""
        return build_chat_request(
            model or self.default_model,
            messages,
            system=system,
            response_format=response_format,
            tools=tools,
            tool_choice=tool_choice,
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            min_p=min_p,
            repeat_penalty=repeat_penalty,
            seed=seed,
            max_tokens=max_tokens,
            stop=stop,
            top_logprobs=top_logprobs,
            cache_prompt=cache_prompt,
            lora_scale=lora_scale,
        )

    @model_keyword(1)
    def completion(
        self, messages: MessagesLike, *, model: str | None = None, **kwargs: Any
    ) -> CompletionStream:
        """Stream a chat completion as typed events.

        ``messages`` is a prompt string or a list of messages (dicts or ``Message``);
        ``model`` defaults to the configured default. Keyword arguments are those of
        :meth:`chat_request`. Iterate the result for events, or read ``.text`` /
        call ``.result()`` for the whole answer.
        """
        request = self.chat_request(messages, model=model, **kwargs)
        return CompletionStream(lambda cancel: self.stream_request(request, cancel))

    def agent(
        self,
        messages: MessagesLike,
        *,
        model: str | None = None,
        tools: Sequence[Any] = (),
        **options: Any,
    ) -> AgentRun:
        """Run a tool loop: the model calls ``tools`` until it gives a final answer.

        ``tools`` holds Python functions (schemas from their signatures and
        docstrings), :func:`terminus.agents.tool` objects and
        :class:`terminus.agents.McpServer` servers. Options are those of
        :class:`terminus.agents.Agent` (``max_steps``, ``constrained``, ``deferred``,
        ``approve``, ``tool_timeout_s``, ``system``) plus sampling keywords
        (``temperature``, ``seed``, ``max_tokens``). Iterate the run for events
        (the completion events plus ``ToolResultEvent`` and ``AgentDone``), or
        take ``.result()`` or ``.text``.
        """
        agent = self._agent(model, tools, options)
        return AgentRun(lambda cancel: agent.events(messages, cancel))

    def _agent(self, model: str | None, tools: Sequence[Any], options: dict[str, Any]) -> Agent:
        sampling = {k: options.pop(k) for k in _SAMPLING_KEYS if k in options}
        params = build_chat_request(self.default_model, "-", **sampling).params
        if "max_tokens" not in sampling:
            params = params.model_copy(update={"max_tokens": 384})
        return Agent(
            self.stream_request, model or self.default_model, tools, params=params, **options
        )

    @model_keyword(1)
    def text_completion(
        self,
        prompt: str | Sequence[int],
        *,
        model: str | None = None,
        response_format: ResponseFormatLike | None = None,
        **params: Any,
    ) -> CompletionStream:
        """Continue ``prompt`` as raw text, with no chat template (base models, experiments).

        ``prompt`` may also be the model's token ids (see :meth:`tokenize`), used as given.

        Takes the sampling keywords of :meth:`chat_request`.
        """
        request = build_text_request(
            model or self.default_model,
            prompt if isinstance(prompt, str) else list(prompt),
            response_format=response_format,
            **params,
        )
        return CompletionStream(lambda cancel: self.stream_request(request, cancel))

    @model_keyword(1)
    def embed(
        self, texts: str | Sequence[str], *, model: str | None = None, normalize: bool = True
    ) -> Embeddings:
        """Embed one text or a batch; ``vectors[i]`` is the float32 vector of ``texts[i]``.

        With no model named, the default embedding model (``TERMINUS_EMBED_MODEL`` or
        all-MiniLM-L6-v2) is used.
        """
        inputs = (texts,) if isinstance(texts, str) else tuple(texts)
        name = model or os.environ.get(EMBED_MODEL_ENV) or DEFAULT_EMBED_MODEL
        try:
            request = EmbedRequest(model=name, inputs=inputs, normalize=normalize)
        except ValidationError as exc:
            raise InvalidParameterError(f"invalid request: {validation_message(exc)}") from exc
        return self.transport.embed(request)

    def stream_request(
        self, request: ChatRequest | TextRequest, cancel: CancelToken
    ) -> Iterator[ChatEvent]:
        """The raw event iterator for a prepared request (servers and peers use this)."""
        if isinstance(request, TextRequest):
            return self.transport.complete(request, cancel)
        return self.transport.chat(request, cancel)

    def doctor(self) -> dict[str, Any]:
        from terminus.client.doctor import doctor_report

        return doctor_report(self)
