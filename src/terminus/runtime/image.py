"""Image generation through the ModelManager: capability checks, then the engine's stream."""

from __future__ import annotations

from collections.abc import Iterator

from terminus.engines.image_base import ImageModel
from terminus.errors import CapabilityError
from terminus.runtime.manager import ModelManager
from terminus.types import CancelToken
from terminus.types.common import Capability, model_kind
from terminus.types.image import ImageEvent, ImageRequest


def generate_image(
    manager: ModelManager, request: ImageRequest, cancel: CancelToken
) -> Iterator[ImageEvent]:
    """Progress events, then the result; the model stays pinned until the stream ends."""
    card = manager.catalog.get(request.model)
    if card.capability != Capability.IMAGE:
        raise CapabilityError(f"{card.id} is {model_kind(card.capability)}, not an image model")
    with manager.use(request.model) as model:
        if not isinstance(model, ImageModel):
            raise CapabilityError(f"the {card.engine} engine cannot generate images")
        yield from model.generate_image(request, cancel)
