"""ModelManager: resolve, fetch, fit-check, load, share and evict models.

Several models stay loaded under a memory budget; the least recently used idle
one is evicted to make room. A model serving a request is never evicted. An idle
model is unloaded once its keep-alive runs out (``set_keep_alive`` / ``touch``;
by default models stay until evicted or unloaded).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from terminus.engines.base import (
    ChatModel,
    EmbedModel,
    Engine,
    LoadedModel,
    LoadOptions,
    TextModel,
)
from terminus.engines.llamacpp_kvdisk import KV_DISK_DIR_KEY, KV_DISK_KEY
from terminus.engines.llamacpp_speculative import DRAFT_PATH_KEY, speculative_plan
from terminus.engines.registry import engine_class
from terminus.errors import (
    CapabilityError,
    ChecksumMismatchError,
    InsufficientMemoryError,
    InvalidParameterError,
    ModelBusyError,
    ModelNotCachedError,
    TerminusError,
)
from terminus.models.cache import ModelCache, ModelFiles
from terminus.models.card import ModelCard, check_can_see
from terminus.models.catalog import Catalog
from terminus.models.progress import NullProgress, Progress
from terminus.models.sources import make_source
from terminus.runtime.keepalive import FOREVER, Reaper
from terminus.runtime.memory import MemoryPolicy, check_fit, format_size, log
from terminus.runtime.validation import check_json_schema, check_request
from terminus.types import (
    CancelToken,
    ChatEvent,
    ChatRequest,
    Embeddings,
    EmbedRequest,
    LoadedModelInfo,
    TextRequest,
)
from terminus.types.common import Capability, model_kind


@dataclass
class _Entry:
    model: LoadedModel
    engine: str
    active: int = 0
    last_used: float = 0.0  # time.monotonic() of the last request's start or end


class ModelManager:
    def __init__(
        self,
        catalog: Catalog,
        cache: ModelCache,
        *,
        budget_bytes: int,
        memory_policy: MemoryPolicy = "refuse",
        allow_download: bool = True,
        progress_factory: Callable[[], Progress] = NullProgress,
        default_keep_alive_s: float = FOREVER,
    ) -> None:
        self.catalog = catalog
        self.cache = cache
        self.budget_bytes = budget_bytes
        self.memory_policy = memory_policy
        self.allow_download = allow_download
        self._progress_factory = progress_factory
        self._entries: OrderedDict[str, _Entry] = OrderedDict()  # LRU order: oldest first
        self._lock = threading.RLock()
        self._load_locks: dict[str, threading.Lock] = {}
        self._reserved: dict[str, int] = {}
        self._options: dict[str, LoadOptions] = {}  # last explicit load options, by model id
        self._keep_alive: dict[str, float] = {}  # per-model idle TTLs, by model id
        self._default_keep_alive_s = default_keep_alive_s
        self._reaper = Reaper(self._expire_due)
        #: Engines picked by a load option instead of the card's engine, e.g. ``split``
        #: (layers over RPC workers): option name -> engine factory. Set by the client.
        self.engine_overrides: dict[str, Callable[[], Engine]] = {}

    # -- files -------------------------------------------------------------------

    def ensure_files(self, card: ModelCard, progress: Progress | None = None) -> ModelFiles:
        progress = progress or self._progress_factory()
        corrupt: ChecksumMismatchError | None = None
        if self.cache.is_cached(card):
            try:
                return self.cache.files(card, progress)
            except ChecksumMismatchError as exc:
                if not card.sources:
                    raise
                # The corrupt blob is gone; the card's sources can bring verified bytes back.
                log.warning("%s; fetching it again", exc.message)
                corrupt = exc
        sources = [
            make_source(s, allow_download=self.allow_download, home=self.cache.root)
            for s in card.sources
        ]
        if not sources:
            raise ModelNotCachedError(f"{card.id} is not cached and its card lists no source")
        try:
            return self.cache.ensure(card, sources, progress)
        except TerminusError as exc:
            if corrupt is None:
                raise
            raise ChecksumMismatchError(
                f"{corrupt.message}; fetching it again failed: {exc.message}",
                hint=exc.hint or corrupt.hint,
            ) from exc
        finally:
            for source in sources:
                close = getattr(source, "close", None)
                if close is not None:
                    close()

    # -- loading -------------------------------------------------------------------

    def load(self, name: str, options: LoadOptions | None = None) -> LoadedModelInfo:
        card = self.catalog.get(name)
        if options is not None:
            with self._lock:
                loaded = self._entries.get(card.id)
            wanted = self._engine_for(card, options).name if loaded is not None else None
            if loaded is not None and loaded.engine != wanted:
                raise InvalidParameterError(
                    f"{card.id} is loaded already on the {loaded.engine} engine, not {wanted}",
                    hint=f"unload it first (`terminus ps`, unload_model({card.id!r}))",
                )
            self._options[card.id] = options  # reloads after an eviction use them too
        entry = self._acquire(card, self._options_for(card.id, options), hold=False)
        with self._lock:  # a keep-alive of 0 may already have unloaded it again
            return self._info(card.id, entry)

    def unload(self, name: str) -> bool:
        card = self.catalog.get(name)
        with self._lock:
            entry = self._entries.get(card.id)
            if entry is None:
                return False
            if entry.active:
                raise ModelBusyError(f"{card.id} is serving {entry.active} request(s); try later")
            del self._entries[card.id]
        entry.model.close()
        return True

    # -- keep-alive ------------------------------------------------------------------

    @property
    def default_keep_alive_s(self) -> float:
        """Idle seconds before a model without its own keep-alive unloads (inf: never)."""
        return self._default_keep_alive_s

    @default_keep_alive_s.setter
    def default_keep_alive_s(self, seconds: float) -> None:
        self._default_keep_alive_s = FOREVER if seconds < 0 else seconds
        self._reaper.wake()

    def set_keep_alive(self, name: str, seconds: float | None) -> None:
        """How long ``name`` stays loaded once idle: seconds, ``math.inf`` for ever,
        ``0`` to unload as soon as its last request ends, ``None`` for the default.

        Applies now (the idle clock restarts) and to later loads of the model.
        """
        card = self.catalog.get(name)
        with self._lock:
            if seconds is None:
                self._keep_alive.pop(card.id, None)
            else:
                self._keep_alive[card.id] = FOREVER if seconds < 0 else seconds
            entry = self._entries.get(card.id)
            if entry is not None:
                entry.last_used = time.monotonic()
        self._reaper.wake()

    def touch(self, name: str, keep_alive_s: float | None = None) -> None:
        """Count ``name`` as used now (restarting its idle clock); with ``keep_alive_s``,
        also set its keep-alive as :meth:`set_keep_alive` does. APIs whose requests
        carry a keep-alive (Ollama's ``keep_alive``) call this when a request ends."""
        if keep_alive_s is not None:
            self.set_keep_alive(name, keep_alive_s)
            return
        card = self.catalog.get(name)
        with self._lock:
            entry = self._entries.get(card.id)
            if entry is not None:
                entry.last_used = time.monotonic()
        self._reaper.wake()

    def keep_alive_for(self, card_id: str) -> float:
        return self._keep_alive.get(card_id, self._default_keep_alive_s)

    def expires_in(self, card_id: str) -> float | None:
        """Seconds until ``card_id`` unloads if it stays idle; ``None``: not loaded, busy,
        or kept for ever."""
        with self._lock:
            entry = self._entries.get(card_id)
            if entry is None or entry.active:
                return None
            ttl = self.keep_alive_for(card_id)
            if math.isinf(ttl):
                return None
            return max(0.0, entry.last_used + ttl - time.monotonic())

    def _expire_due(self) -> float | None:
        """Unload idle models past their keep-alive; the seconds until the next one is due."""
        now = time.monotonic()
        expired: list[tuple[str, LoadedModel]] = []
        next_due: float | None = None
        with self._lock:
            for card_id, entry in list(self._entries.items()):
                ttl = self.keep_alive_for(card_id)
                if entry.active or math.isinf(ttl):
                    continue
                remaining = entry.last_used + ttl - now
                if remaining <= 0:
                    expired.append((card_id, self._entries.pop(card_id).model))
                elif next_due is None or remaining < next_due:
                    next_due = remaining
        for card_id, model in expired:
            log.info("unloading %s: idle past its keep-alive", card_id)
            model.close()
        return next_due

    def _wake_if_timed(self, card_id: str) -> None:
        if not math.isinf(self.keep_alive_for(card_id)):
            self._reaper.wake()

    def unload_all(self) -> None:
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
        for entry in entries:
            entry.model.close()

    def _options_for(self, card_id: str, options: LoadOptions | None) -> LoadOptions:
        return options or self._options.get(card_id) or LoadOptions()

    def loaded(self) -> list[LoadedModelInfo]:
        with self._lock:
            return [self._info(card_id) for card_id in self._entries]

    def used_bytes(self) -> int:
        with self._lock:
            return sum(e.model.memory_bytes for e in self._entries.values())

    @contextmanager
    def use(self, name: str, options: LoadOptions | None = None) -> Iterator[LoadedModel]:
        """A loaded model, pinned against eviction for the duration."""
        card = self.catalog.get(name)
        entry = self._acquire(card, self._options_for(card.id, options), hold=True)
        try:
            yield entry.model
        finally:
            with self._lock:
                entry.active -= 1
                entry.last_used = time.monotonic()
            self._wake_if_timed(card.id)

    def chat(self, request: ChatRequest, cancel: CancelToken) -> Iterator[ChatEvent]:
        check_request(request)
        card = self.catalog.get(request.model)
        if card.capability != Capability.CHAT:
            hint = (
                "use text_completion for base models" if card.capability == "completion" else None
            )
            raise CapabilityError(
                f"{card.id} is {model_kind(card.capability)}; it cannot chat", hint=hint
            )
        if any(m.images for m in request.messages):
            check_can_see(card)  # before loading: a text-only model never gets the request
        with self.use(request.model) as model:
            if not isinstance(model, ChatModel):
                raise CapabilityError(f"the {card.engine} engine cannot chat")
            yield from model.chat(request, cancel)

    def complete(self, request: TextRequest, cancel: CancelToken) -> Iterator[ChatEvent]:
        """Raw prompt continuation, on chat and base models alike."""
        if request.response_format is not None and request.response_format.json_schema:
            check_json_schema(request.response_format.json_schema)
        with self.use(request.model) as model:
            if not isinstance(model, TextModel):
                raise CapabilityError(f"{model.card.id} cannot continue raw text")
            yield from model.complete(request, cancel)

    def embed(self, request: EmbedRequest) -> Embeddings:
        card = self.catalog.get(request.model)
        if card.capability != Capability.EMBED:
            raise CapabilityError(
                f"{card.id} is {model_kind(card.capability)}, not an embedding model"
            )
        with self.use(request.model) as model:
            if not isinstance(model, EmbedModel):
                raise CapabilityError(f"the {card.engine} engine cannot embed")
            return model.embed(request)

    # -- internals -------------------------------------------------------------------

    def _acquire(self, card: ModelCard, options: LoadOptions, *, hold: bool) -> _Entry:
        with self._lock:
            entry = self._touch(card.id, hold)
            if entry is not None:
                return entry
            load_lock = self._load_locks.setdefault(card.id, threading.Lock())
        with load_lock:  # one load per model; other callers wait and share it
            with self._lock:
                entry = self._touch(card.id, hold)
                if entry is not None:
                    return entry
            engine = self._engine_for(card, options)
            files = self.ensure_files(card)
            options = self._with_draft_file(card, options)
            needed = engine.estimate_memory(card, files, options)
            self._make_room(card.id, needed)  # reserves `needed` until the load ends
            try:
                check_fit(card.id, needed, self.memory_policy)
                model = engine.load(card, files, options)
            except BaseException:
                with self._lock:
                    self._reserved.pop(card.id, None)
                raise
            with self._lock:
                self._reserved.pop(card.id, None)  # the entry now counts instead
                entry = _Entry(
                    model=model,
                    engine=engine.name,
                    active=1 if hold else 0,
                    last_used=time.monotonic(),
                )
                self._entries[card.id] = entry
            self._wake_if_timed(card.id)
            return entry

    def _engine_for(self, card: ModelCard, options: LoadOptions) -> Engine:
        for option, factory in self.engine_overrides.items():
            if options.extra.get(option):
                return factory()
        return engine_class(card.engine)()

    def _with_draft_file(self, card: ModelCard, options: LoadOptions) -> LoadOptions:
        """Where KV snapshots go, and a draft model's verified file (speculative decoding)."""
        if card.engine != "llamacpp" or card.capability == Capability.EMBED:
            return options
        kv = options.extra.get(KV_DISK_KEY, card.defaults.get(KV_DISK_KEY))
        if kv and KV_DISK_DIR_KEY not in options.extra:  # snapshots live in this home
            extra = {**options.extra, KV_DISK_DIR_KEY: str(self.cache.root / "kv")}
            options = replace(options, extra=extra)
        plan = speculative_plan(card, options)
        if plan is None or plan.draft_model is None:
            return options
        draft = self.catalog.get(plan.draft_model)
        if draft.engine != card.engine or draft.capability == Capability.EMBED:
            raise CapabilityError(f"{draft.id} is not a {card.engine} text model; it cannot draft")
        path = self.ensure_files(draft).main
        return replace(options, extra={**options.extra, DRAFT_PATH_KEY: str(path)})

    def _touch(self, card_id: str, hold: bool) -> _Entry | None:
        entry = self._entries.get(card_id)
        if entry is not None:
            self._entries.move_to_end(card_id)
            entry.last_used = time.monotonic()
            if hold:
                entry.active += 1
        return entry

    def _make_room(self, card_id: str, needed: int) -> None:
        """Evict least recently used idle models until ``needed`` fits the budget.

        Nothing is evicted unless that makes the load fit (or the policy lets it load
        anyway); on success ``needed`` is reserved for ``card_id`` so concurrent loads
        of other models count it.
        """
        if needed > self.budget_bytes:
            message = (
                f"{card_id} needs about {format_size(needed)}, more than the memory budget "
                f"of {format_size(self.budget_bytes)}"
            )
            if self.memory_policy == "refuse":
                raise InsufficientMemoryError(
                    message, hint="raise TERMINUS_MEMORY_BUDGET or use a smaller context_length"
                )
            if self.memory_policy == "warn":
                log.warning("%s; loading anyway (memory policy: warn)", message)
        evicted: list[LoadedModel] = []
        with self._lock:
            used = sum(e.model.memory_bytes for e in self._entries.values())
            used += sum(self._reserved.values())
            victims: list[str] = []
            for other_id, entry in self._entries.items():
                if used + needed <= self.budget_bytes:
                    break
                if entry.active:
                    continue
                victims.append(other_id)
                used -= entry.model.memory_bytes
            still_over = used + needed > self.budget_bytes
            if still_over and self.memory_policy == "refuse":
                raise InsufficientMemoryError(
                    f"{card_id} needs about {format_size(needed)}; models in use hold "
                    f"{format_size(used)} of the {format_size(self.budget_bytes)} budget"
                )
            for other_id in victims:
                evicted.append(self._entries.pop(other_id).model)
            self._reserved[card_id] = needed
        for model in evicted:
            model.close()
        if still_over and self.memory_policy == "warn" and needed <= self.budget_bytes:
            log.warning(
                "%s needs about %s; with %s in use that exceeds the %s budget; "
                "loading anyway (memory policy: warn)",
                card_id,
                format_size(needed),
                format_size(used),
                format_size(self.budget_bytes),
            )

    def _info(self, card_id: str, entry: _Entry | None = None) -> LoadedModelInfo:
        entry = entry or self._entries[card_id]
        return LoadedModelInfo(
            id=card_id,
            engine=entry.engine,
            memory_bytes=entry.model.memory_bytes,
            context_length=getattr(entry.model, "context_length", None),
            parallel=getattr(entry.model, "parallel", None),
            active_requests=entry.active,
            keep_alive_s=None if math.isinf(ttl := self.keep_alive_for(card_id)) else ttl,
            expires_in_s=self.expires_in(card_id),
        )
