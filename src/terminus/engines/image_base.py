"""What a loaded image-generation model offers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from terminus.engines.base import LoadedModel
from terminus.types import CancelToken
from terminus.types.image import ImageEvent, ImageRequest


@runtime_checkable
class ImageModel(LoadedModel, Protocol):
    def generate_image(self, request: ImageRequest, cancel: CancelToken) -> Iterator[ImageEvent]:
        """``ImageProgress`` after each sampling step, then one ``ImageResult``.

        A cancel stops the generation and raises ``GenerationCancelledError``.
        """
        ...
