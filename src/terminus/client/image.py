"""Image generation on the client: ``generate_image`` for Terminus and AsyncTerminus."""

from __future__ import annotations

import io
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from pydantic import ValidationError

from terminus.client.streams import AsyncCompletionStream, CompletionStream, EventFactory
from terminus.errors import GenerationCancelledError, InputFileError, InvalidParameterError
from terminus.types import CancelToken
from terminus.types.chat import validation_message
from terminus.types.image import ImageEvent, ImageRequest, ImageResult

if TYPE_CHECKING:
    from terminus.transports import Transport

IMAGE_MODEL_ENV = "TERMINUS_IMAGE_MODEL"
ImageFactory = Callable[[CancelToken], Iterator[ImageEvent]]
InitImageLike = str | os.PathLike[str] | bytes | Any  # Any: a PIL image


def image_request(model: str | None, prompt: str, **params: Any) -> ImageRequest:
    """Validate friendly arguments into an ``ImageRequest`` (raises ``InvalidParameterError``)."""
    name = model or os.environ.get(IMAGE_MODEL_ENV)
    if not name:
        raise InvalidParameterError(
            "no image model named", hint=f"pass a model or set {IMAGE_MODEL_ENV}"
        )
    if params.get("init_image") is not None:
        params["init_image"] = _image_bytes(params["init_image"])
    try:
        return ImageRequest(model=name, prompt=prompt, **params)
    except ValidationError as exc:
        raise InvalidParameterError(f"invalid request: {validation_message(exc)}") from exc
    except TypeError as exc:  # an unknown keyword
        raise InvalidParameterError(str(exc)) from exc


def _image_bytes(image: InitImageLike) -> bytes:
    if isinstance(image, bytes | bytearray | memoryview):
        return bytes(image)
    if isinstance(image, str | os.PathLike):
        try:
            return Path(image).expanduser().read_bytes()
        except OSError as exc:
            raise InputFileError(f"cannot read {os.fspath(image)}: {exc}") from exc
    if hasattr(image, "save"):  # a PIL image
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()
    raise InvalidParameterError(
        f"init_image must be a path, bytes or a PIL image, not {type(image).__name__}"
    )


class _ResultKeeper:
    """Remembers the ``ImageResult`` among the events that pass through."""

    def __init__(self) -> None:
        self._started = False
        self._result: ImageResult | None = None

    def _keep(self, event: object) -> ImageEvent:
        image_event = cast(ImageEvent, event)
        if isinstance(image_event, ImageResult):
            self._result = image_event
        return image_event

    def _finished(self) -> ImageResult:
        if self._result is None:
            raise GenerationCancelledError("the generation ended without an image")
        return self._result


class ImageStream(_ResultKeeper):
    """One generation: iterate for ``ImageProgress`` events (the last event is the
    ``ImageResult``), or call :meth:`result`. ``cancel()`` works from any thread and
    makes the iteration raise ``GenerationCancelledError``."""

    def __init__(self, factory: ImageFactory) -> None:
        super().__init__()
        # Completion streams already drive an event iterator with cancel; reuse them.
        self._inner = CompletionStream(cast(EventFactory, factory))

    def __iter__(self) -> Iterator[ImageEvent]:
        self._started = True
        for event in self._inner:
            yield self._keep(event)

    def cancel(self) -> None:
        self._inner.cancel()

    @property
    def cancelled(self) -> bool:
        return self._inner.cancelled

    def result(self) -> ImageResult:
        if not self._started:
            for _ in self:
                pass
        return self._finished()

    def __enter__(self) -> ImageStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self._inner.__exit__(*exc)


class AsyncImageStream(_ResultKeeper):
    """The asyncio face of :class:`ImageStream`; cancelling the consuming task cancels."""

    def __init__(self, factory: ImageFactory) -> None:
        super().__init__()
        self._inner = AsyncCompletionStream(cast(EventFactory, factory))

    def __aiter__(self) -> AsyncIterator[ImageEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[ImageEvent]:
        self._started = True
        async for event in self._inner:
            yield self._keep(event)

    def cancel(self) -> None:
        self._inner.cancel()

    async def result(self) -> ImageResult:
        if not self._started:
            async for _ in self:
                pass
        return self._finished()


class ImageMixin:
    """``generate_image`` for :class:`~terminus.client.sync.Terminus`."""

    transport: Transport

    def generate_image(self, model: str | None, prompt: str, **params: Any) -> ImageStream:
        """Generate images from a prompt (and optionally an init image).

        Keywords: ``negative_prompt``, ``width``, ``height``, ``steps``, ``cfg_scale``,
        ``seed``, ``sampler``, ``scheduler``, ``count``, ``init_image`` (a path, bytes or
        PIL image) and ``strength``; unset ones take the model card's defaults. With no
        model named, ``TERMINUS_IMAGE_MODEL`` is used.

        >>> image = t.generate_image("sdxs-512-dreamshaper", "a lighthouse").result().image
        >>> image.save("lighthouse.png")
        """
        request = image_request(model, prompt, **params)
        return ImageStream(lambda cancel: self.transport.generate_image(request, cancel))


class AsyncImageMixin:
    """``generate_image`` for :class:`~terminus.client.aio.AsyncTerminus`."""

    sync: Any  # the wrapped Terminus

    def generate_image(self, model: str | None, prompt: str, **params: Any) -> AsyncImageStream:
        """Like :meth:`Terminus.generate_image`; iterate with ``async for``."""
        request = image_request(model, prompt, **params)
        return AsyncImageStream(lambda cancel: self.sync.transport.generate_image(request, cancel))
