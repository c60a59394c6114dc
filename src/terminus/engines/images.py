"""Image payloads: encoded bytes to a verified RGB Pillow image, or an ``InvalidImageError``."""

from __future__ import annotations

import io
from typing import Any

from terminus.errors import InvalidImageError

#: Decompression-bomb guard: Pillow warns (an error under our warning filter) above this.
MAX_PIXELS = 100_000_000


def decode_image(data: bytes) -> Any:
    """A loaded RGB ``PIL.Image``; raises ``InvalidImageError`` for anything undecodable."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise InvalidImageError("the image is empty (0 bytes)")
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_PIXELS:
                raise InvalidImageError(
                    f"the image is {image.width}x{image.height}; at most {MAX_PIXELS:,} pixels"
                )
            image.load()  # truncated or corrupt pixel data fails here, not later
            return image.convert("RGB")
    except UnidentifiedImageError as exc:
        raise InvalidImageError("not an image file Pillow can read (PNG, JPEG, WebP, …)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidImageError(f"cannot decode the image: {exc}") from exc
