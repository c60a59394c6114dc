"""A pool of providers: each request goes to the least busy allowed peer that shares its model.

``Terminus(delegate=[ref1, ref2, …])`` and ``terminus run --peer A --peer B`` use it. Each
provider is asked for its status (models, requests running, load) on first use and again
in the background when that answer is older than ``status_max_age``; between answers the
pool counts the requests it has in flight on each provider itself, so concurrent callers
spread at once. A provider that cannot be reached, is full (``PeerBusyError``) or lacks the
model before a request's first event is skipped and the next one tried; an unreachable one
is left out for ``down_s`` seconds. A stream that already produced events is never sent
elsewhere (that could duplicate output): it raises ``PeerUnavailableError`` as with one peer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from terminus.engines.base import LoadOptions
from terminus.engines.speech_base import TranscribeProgress
from terminus.errors import (
    InvalidParameterError,
    ModelNotFoundError,
    PeerBusyError,
    PeerUnavailableError,
    TerminusError,
)
from terminus.p2p.consumer import PeerClient
from terminus.p2p.identity import Identity, load_or_create_identity
from terminus.p2p.node import NodeRef, parse_node_ref
from terminus.p2p.peers import PeerBook
from terminus.p2p.status import ProviderStatus, StatusRequest
from terminus.paths import terminus_home
from terminus.transports.base import Transport
from terminus.types import (
    CancelToken,
    ChatEvent,
    ChatRequest,
    Embeddings,
    EmbedRequest,
    LoadedModelInfo,
    TextRequest,
)
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

log = logging.getLogger(__name__)

#: Errors raised before a request's first event that another provider may not raise.
_TRY_NEXT = (PeerUnavailableError, PeerBusyError, ModelNotFoundError)


@dataclass
class PoolMember:
    client: PeerClient
    inflight: int = 0
    routed: int = 0
    status: ProviderStatus | None = None
    status_at: float = 0.0
    #: Our own requests in flight when ``status`` was taken (the rest were others').
    inflight_at_status: int = 0
    latency_s: float | None = None
    down_until: float = 0.0
    error: str | None = None
    refreshing: bool = False
    lacks: set[str] = field(default_factory=set)

    @property
    def node_id(self) -> str:
        return self.client.ref.node_id

    def busy(self) -> float:
        """Requests running there per slot: ours now, plus others' at the last status."""
        others = 0
        slots = 4
        if self.status is not None:
            others = max(0, self.status.active - self.inflight_at_status)
            slots = max(1, self.status.max_concurrent)
        return (self.inflight + others) / slots


class PoolTransport:
    """Runs each request on one provider of a pool, chosen per request."""

    name = "pool"

    def __init__(
        self,
        peers: Sequence[str | NodeRef],
        *,
        home: str | Path | None = None,
        identity: Identity | None = None,
        fallback: Transport | None = None,
        resolve: Callable[[str], str] | None = None,
        connect_timeout: float = 3.0,
        status_max_age: float = 2.0,
        down_s: float = 15.0,
    ) -> None:
        """``resolve`` maps a model name or alias to the id providers report (the catalog's)."""
        if not peers:
            raise InvalidParameterError("a pool needs at least one provider")
        root = terminus_home(home)
        self._book = PeerBook(root)
        me = identity or load_or_create_identity(root)
        refs = [
            p if isinstance(p, NodeRef) else self._book.resolve(parse_node_ref(p)) for p in peers
        ]
        if len({r.node_id for r in refs}) != len(refs):
            raise InvalidParameterError("the same provider is named twice in the pool")
        # retries=0: a provider that does not answer is skipped now, not dialled three times
        self.members = [
            PoolMember(PeerClient(r, me, connect_timeout=connect_timeout, retries=0)) for r in refs
        ]
        self.fallback = fallback
        self.fallbacks = 0
        self.failovers = 0
        self._resolve = resolve or (lambda model: model)
        self._status_max_age = status_max_age
        self._down_s = down_s
        self._lock = threading.Lock()

    # -- streams -------------------------------------------------------------------

    def chat(self, request: ChatRequest, cancel: CancelToken) -> Iterator[ChatEvent]:
        return self._stream("chat", request, cancel)

    def complete(self, request: TextRequest, cancel: CancelToken) -> Iterator[ChatEvent]:
        return self._stream("complete", request, cancel)

    def translate(self, request: TranslateRequest, cancel: CancelToken) -> Iterator[ChatEvent]:
        return self._stream("translate", request, cancel)

    def speak(self, request: SpeakRequest, cancel: CancelToken) -> Iterator[SpeechChunk]:
        return self._stream("speak", request, cancel)

    def generate_image(self, request: ImageRequest, cancel: CancelToken) -> Iterator[ImageEvent]:
        return self._stream("generate_image", request, cancel)

    # -- calls ---------------------------------------------------------------------

    def embed(self, request: EmbedRequest) -> Embeddings:
        result: Embeddings = self._call("embed", request)
        return result

    def transcribe(
        self, request: TranscribeRequest, progress: TranscribeProgress | None = None
    ) -> Transcription:
        result: Transcription = self._call("transcribe", request)
        return result

    def ocr(self, request: OcrRequest) -> OcrResult:
        result: OcrResult = self._call("ocr", request)
        return result

    # -- models live on the providers ------------------------------------------------

    def load(self, model: str, options: LoadOptions) -> LoadedModelInfo:
        """Providers load what they share; a model none of them shares is refused per request."""
        return LoadedModelInfo(id=model, engine="pool", memory_bytes=0)

    def unload(self, model: str) -> bool:
        return False

    def loaded(self) -> list[LoadedModelInfo]:
        return []

    def close(self) -> None:
        for member in self.members:
            member.client.close()
        if self.fallback is not None:
            self.fallback.close()

    # -- status --------------------------------------------------------------------

    def refresh(self) -> list[PoolMember]:
        """Ask every provider for its status now (unreachable ones are marked down)."""
        threads = [
            threading.Thread(target=self._refresh, args=(m,), daemon=True) for m in self.members
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return self.members

    def describe(self) -> list[dict[str, Any]]:
        rows = []
        for m in self.members:
            s = m.status
            rows.append(
                {
                    "node_id": m.node_id,
                    "addresses": list(m.client.ref.addresses),
                    "reachable": m.error is None and s is not None,
                    "models": s.models if s else [],
                    "active": s.active if s else None,
                    "max_concurrent": s.max_concurrent if s else None,
                    "served": s.served if s else None,
                    "load_average": s.load_average if s else None,
                    "cores": s.cores if s else None,
                    "latency_ms": None if m.latency_s is None else round(m.latency_s * 1e3, 1),
                    "routed": m.routed,
                    "error": m.error,
                }
            )
        return rows

    def _refresh(self, member: PoolMember) -> None:
        started = time.perf_counter()
        with self._lock:
            ours = member.inflight
        try:
            status = member.client.call("status", StatusRequest())
        except TerminusError as exc:
            with self._lock:
                member.error = exc.one_line()
                member.down_until = time.monotonic() + self._down_s
                member.refreshing = False
            return
        took = time.perf_counter() - started
        with self._lock:
            member.status = status
            member.status_at = time.monotonic()
            member.inflight_at_status = ours
            member.latency_s = (
                took if member.latency_s is None else 0.7 * member.latency_s + 0.3 * took
            )
            member.error = None
            member.down_until = 0.0
            member.refreshing = False
        try:
            self._book.seen(member.client.ref)
        except OSError as exc:  # the address book is a convenience; routing goes on
            log.debug("could not note %s in the peer book: %s", member.client.ref, exc)

    def _refresh_stale(self) -> None:
        """First use: ask everyone and wait. Later: stale answers are renewed in the background."""
        now = time.monotonic()
        first = [m for m in self.members if m.status is None and m.down_until <= now]
        if first and all(m.status is None for m in self.members):
            self.refresh()
            return
        for member in self.members:
            with self._lock:
                stale = now - member.status_at > self._status_max_age and now >= member.down_until
                if not stale or member.refreshing:
                    continue
                member.refreshing = True
            threading.Thread(target=self._refresh, args=(member,), daemon=True).start()

    # -- routing -------------------------------------------------------------------

    def _pick(self, model: str | None, tried: set[str]) -> PoolMember | None:
        self._refresh_stale()
        now = time.monotonic()
        with self._lock:
            candidates = [
                m
                for m in self.members
                if m.node_id not in tried
                and m.down_until <= now
                and (model is None or model not in m.lacks)
                and (model is None or m.status is None or model in m.status.models)
            ]
            if not candidates:
                return None
            best = min(
                candidates,
                key=lambda m: (m.busy(), m.latency_s if m.latency_s is not None else 1.0, m.routed),
            )
            best.inflight += 1
            best.routed += 1
            return best

    def _release(self, member: PoolMember) -> None:
        with self._lock:
            member.inflight -= 1

    def _failed(self, member: PoolMember, model: str | None, exc: TerminusError) -> None:
        with self._lock:
            if isinstance(exc, PeerUnavailableError):
                member.error = exc.one_line()
                member.down_until = time.monotonic() + self._down_s
            elif isinstance(exc, ModelNotFoundError) and model is not None:
                member.lacks.add(model)
            self.failovers += 1
        log.info("provider %s… could not take the request (%s)", member.node_id[:12], exc)

    def _model(self, request: Any) -> str | None:
        name = getattr(request, "model", None)
        if not isinstance(name, str):
            return None
        try:
            return self._resolve(name)
        except TerminusError:
            return name

    def _none_left(self, model: str | None, last: TerminusError | None) -> TerminusError:
        if last is not None:
            return last
        if model is not None and all(
            m.status is not None and model not in m.status.models for m in self.members
        ):
            return ModelNotFoundError(f"no provider in the pool shares {model!r}")
        return PeerUnavailableError(
            "no provider in the pool can be reached",
            hint="see `terminus peers status`",
        )

    def _stream(self, op: str, request: Any, cancel: CancelToken) -> Iterator[Any]:
        return self._routed_stream(op, request, cancel, self._model(request))

    def _routed_stream(
        self, op: str, request: Any, cancel: CancelToken, model: str | None
    ) -> Iterator[Any]:
        tried: set[str] = set()
        last: TerminusError | None = None
        while (member := self._pick(model, tried)) is not None:
            tried.add(member.node_id)
            started = False
            try:
                events = member.client.stream(op, request, cancel)
                try:
                    for event in events:
                        started = True
                        yield event
                finally:
                    close = getattr(events, "close", None)
                    if close is not None:
                        close()  # a caller that stops early stops the provider now
                return
            except _TRY_NEXT as exc:
                if started or cancel.cancelled:
                    raise
                self._failed(member, model, exc)
                last = exc
            finally:
                self._release(member)
        if self.fallback is None:
            raise self._none_left(model, last)
        self.fallbacks += 1
        log.warning("no provider could take %s; running it locally", op)
        yield from getattr(self.fallback, op)(request, cancel)

    def _call(self, op: str, request: Any) -> Any:
        model = self._model(request)
        tried: set[str] = set()
        last: TerminusError | None = None
        while (member := self._pick(model, tried)) is not None:
            tried.add(member.node_id)
            try:
                return member.client.call(op, request)
            except _TRY_NEXT as exc:
                self._failed(member, model, exc)
                last = exc
            finally:
                self._release(member)
        if self.fallback is None:
            raise self._none_left(model, last)
        self.fallbacks += 1
        return getattr(self.fallback, op)(request)
