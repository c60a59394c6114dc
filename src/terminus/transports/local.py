from __future__ import annotations

from collections.abc import Iterator

from terminus.engines.base import LoadOptions
from terminus.engines.speech_base import TranscribeProgress
from terminus.runtime import image, speech
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

    def transcribe(
        self, request: TranscribeRequest, progress: TranscribeProgress | None = None
    ) -> Transcription:
        return speech.transcribe(self.manager, request, progress)

    def speak(self, request: SpeakRequest, cancel: CancelToken) -> Iterator[SpeechChunk]:
        return speech.speak(self.manager, request, cancel)

    def ocr(self, request: OcrRequest) -> OcrResult:
        return speech.ocr(self.manager, request)

    def translate(self, request: TranslateRequest, cancel: CancelToken) -> Iterator[ChatEvent]:
        return speech.translate(self.manager, request, cancel)

    def generate_image(self, request: ImageRequest, cancel: CancelToken) -> Iterator[ImageEvent]:
        return image.generate_image(self.manager, request, cancel)

    def load(self, model: str, options: LoadOptions) -> LoadedModelInfo:
        return self.manager.load(model, options)

    def unload(self, model: str) -> bool:
        return self.manager.unload(model)

    def loaded(self) -> list[LoadedModelInfo]:
        return self.manager.loaded()

    def close(self) -> None:
        self.manager.unload_all()
