"""Delegated inference: the same Transport, run by a trusted peer over an authenticated link.

``PeerTransport`` forwards each request to a provider (``terminus provide``) and
yields its events unchanged, so callers cannot tell a delegated completion from a
local one. When the provider cannot be reached, an optional ``fallback`` transport
(usually the local one) serves the request instead, also when the provider is lost before the
first event (nothing was streamed yet); a stream that breaks after it started raises
``PeerUnavailableError``, since replaying it could duplicate output.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from terminus.engines.base import LoadOptions
from terminus.engines.speech_base import TranscribeProgress
from terminus.errors import PeerUnavailableError
from terminus.p2p.consumer import PeerClient
from terminus.p2p.identity import Identity, load_or_create_identity
from terminus.p2p.node import NodeRef, parse_node_ref
from terminus.p2p.peers import PeerBook
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


class PeerTransport:
    """Runs requests on a provider peer named by a ``terminus:node/…`` reference or node id."""

    name = "peer"

    def __init__(
        self,
        peer: str | NodeRef,
        *,
        home: str | Path | None = None,
        identity: Identity | None = None,
        fallback: Transport | None = None,
        connect_timeout: float = 5.0,
        retries: int = 2,
    ) -> None:
        root = terminus_home(home)
        book = PeerBook(root)
        ref = peer if isinstance(peer, NodeRef) else book.resolve(parse_node_ref(peer))
        self.peer = ref
        self.fallback = fallback
        self.fallbacks = 0
        self.client = PeerClient(
            ref,
            identity or load_or_create_identity(root),
            connect_timeout=connect_timeout,
            retries=retries,
        )
        self._book = book

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

    # -- models live on the provider -------------------------------------------------

    def load(self, model: str, options: LoadOptions) -> LoadedModelInfo:
        """The provider loads what it shares; requests for other models are refused there."""
        return LoadedModelInfo(id=model, engine="peer", memory_bytes=0)

    def unload(self, model: str) -> bool:
        return False

    def loaded(self) -> list[LoadedModelInfo]:
        return []

    def close(self) -> None:
        self.client.close()
        if self.fallback is not None:
            self.fallback.close()

    # -- internals -----------------------------------------------------------------

    def _stream(self, op: str, request: Any, cancel: CancelToken) -> Iterator[Any]:
        try:
            events = self.client.stream(op, request, cancel)
        except PeerUnavailableError as exc:
            events = self._fall_back(op, exc)(request, cancel)
            return events
        self._book.seen(self.peer)
        return self._with_late_fallback(op, request, cancel, events)

    def _with_late_fallback(
        self, op: str, request: Any, cancel: CancelToken, events: Iterator[Any]
    ) -> Iterator[Any]:
        """Fall back when the provider is lost before its first event, never after one."""
        started = False
        try:
            for event in events:
                started = True
                yield event
        except PeerUnavailableError as exc:
            if started or self.fallback is None:
                raise
            yield from self._fall_back(op, exc)(request, cancel)
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()  # a caller that stops early stops the provider's generation now

    def _call(self, op: str, request: Any) -> Any:
        try:
            result = self.client.call(op, request)
        except PeerUnavailableError as exc:
            return self._fall_back(op, exc)(request)
        self._book.seen(self.peer)
        return result

    def _fall_back(self, op: str, error: PeerUnavailableError) -> Callable[..., Any]:
        if self.fallback is None:
            raise error
        log.warning("%s; running %s locally instead", error.one_line(), op)
        self.fallbacks += 1
        method: Callable[..., Any] = getattr(self.fallback, op)
        return method
