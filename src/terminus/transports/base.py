from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from terminus.engines.base import LoadOptions
from terminus.engines.speech_base import TranscribeProgress
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


class Transport(Protocol):
    """The one seam between the client and wherever a model runs.

    Every transport yields the same event sequence for the same request, so a
    completion from a peer or a server looks exactly like a local one.
    """

    name: str

    def chat(self, request: ChatRequest, cancel: CancelToken) -> Iterator[ChatEvent]: ...

    def complete(self, request: TextRequest, cancel: CancelToken) -> Iterator[ChatEvent]: ...

    def embed(self, request: EmbedRequest) -> Embeddings: ...

    def transcribe(
        self, request: TranscribeRequest, progress: TranscribeProgress | None = None
    ) -> Transcription: ...

    def speak(self, request: SpeakRequest, cancel: CancelToken) -> Iterator[SpeechChunk]: ...

    def ocr(self, request: OcrRequest) -> OcrResult: ...

    def translate(self, request: TranslateRequest, cancel: CancelToken) -> Iterator[ChatEvent]: ...

    def generate_image(
        self, request: ImageRequest, cancel: CancelToken
    ) -> Iterator[ImageEvent]: ...

    def load(self, model: str, options: LoadOptions) -> LoadedModelInfo: ...

    def unload(self, model: str) -> bool: ...

    def loaded(self) -> list[LoadedModelInfo]: ...

    def close(self) -> None: ...
