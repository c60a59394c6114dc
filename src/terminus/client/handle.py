"""A model handle: one model named once, then used like the client.

>>> qwen = t.model("qwen")
>>> qwen.completion("Translate to French: good morning").text
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from terminus.client.aio import AsyncTerminus
    from terminus.client.image import AsyncImageStream, ImageStream
    from terminus.client.media import AudioLike, ImageLike
    from terminus.client.streams import AsyncCompletionStream, CompletionStream
    from terminus.client.sync import Terminus
    from terminus.types import Embeddings, LoadedModelInfo
    from terminus.types.chat import MessagesLike
    from terminus.types.speech import OcrResult, Speech, SpeechChunk, Transcription, Translation


class ModelHandle:
    """The client's calls with ``model=`` already filled in (``None``: the default model)."""

    def __init__(self, client: Terminus, name: str | None) -> None:
        self.client = client
        self.name = name

    def __repr__(self) -> str:
        return f"ModelHandle({self.name or self.client.default_model!r})"

    def load(self, **options: Any) -> LoadedModelInfo:
        return self.client.load_model(self.name, **options)

    def unload(self) -> bool:
        return self.client.unload_model(self.name)

    def completion(self, messages: MessagesLike, **kwargs: Any) -> CompletionStream:
        return self.client.completion(messages, model=self.name, **kwargs)

    chat = completion

    def text_completion(self, prompt: str | Sequence[int], **kwargs: Any) -> CompletionStream:
        return self.client.text_completion(prompt, model=self.name, **kwargs)

    def embed(self, texts: str | Sequence[str], **kwargs: Any) -> Embeddings:
        return self.client.embed(texts, model=self.name, **kwargs)

    def transcribe(self, audio: AudioLike, **kwargs: Any) -> Transcription:
        return self.client.transcribe(audio, model=self.name, **kwargs)

    def speak(self, text: str, **kwargs: Any) -> Speech:
        return self.client.speak(text, model=self.name, **kwargs)

    def speak_stream(self, text: str, **kwargs: Any) -> Iterator[SpeechChunk]:
        return self.client.speak_stream(text, model=self.name, **kwargs)

    def ocr(self, image: ImageLike, **kwargs: Any) -> OcrResult:
        return self.client.ocr(image, model=self.name, **kwargs)

    def translate(self, text: str, target: str, **kwargs: Any) -> Translation:
        return self.client.translate(text, target, model=self.name, **kwargs)

    def generate_image(self, prompt: str, **params: Any) -> ImageStream:
        return self.client.generate_image(prompt, model=self.name, **params)


class AsyncModelHandle:
    """:class:`ModelHandle` for :class:`~terminus.client.aio.AsyncTerminus`."""

    def __init__(self, client: AsyncTerminus, name: str | None) -> None:
        self.client = client
        self.name = name

    def __repr__(self) -> str:
        return f"AsyncModelHandle({self.name or self.client.sync.default_model!r})"

    async def load(self, **options: Any) -> LoadedModelInfo:
        return await self.client.load_model(self.name, **options)

    async def unload(self) -> bool:
        return await self.client.unload_model(self.name)

    def completion(self, messages: MessagesLike, **kwargs: Any) -> AsyncCompletionStream:
        return self.client.completion(messages, model=self.name, **kwargs)

    chat = completion

    def text_completion(self, prompt: str | Sequence[int], **kwargs: Any) -> AsyncCompletionStream:
        return self.client.text_completion(prompt, model=self.name, **kwargs)

    async def embed(self, texts: str | list[str], **kwargs: Any) -> Embeddings:
        return await self.client.embed(texts, model=self.name, **kwargs)

    async def transcribe(self, audio: AudioLike, **kwargs: Any) -> Transcription:
        return await self.client.transcribe(audio, model=self.name, **kwargs)

    async def speak(self, text: str, **kwargs: Any) -> Speech:
        return await self.client.speak(text, model=self.name, **kwargs)

    async def ocr(self, image: ImageLike, **kwargs: Any) -> OcrResult:
        return await self.client.ocr(image, model=self.name, **kwargs)

    async def translate(self, text: str, target: str, **kwargs: Any) -> Translation:
        return await self.client.translate(text, target, model=self.name, **kwargs)

    def generate_image(self, prompt: str, **params: Any) -> AsyncImageStream:
        return self.client.generate_image(prompt, model=self.name, **params)
