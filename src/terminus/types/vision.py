"""Images in chat messages: any accepted input becomes checked PNG or JPEG bytes, base64.

A chat message carries its images as base64 text (``Message.images``), so a message
stays plain JSON through every transport. What a user hands in (a path, bytes, a
Pillow image, a ``data:`` URL, an ``http(s)`` URL when fetching is allowed) is decoded
here in full with Pillow before any model sees it: a corrupt or truncated file, a
format llama.cpp cannot read, or an image too large to decode safely is a
:class:`~terminus.errors.ChatImageError` (HTTP 400), never a silent drop.

Limits (documented in docs/vision.md):

- at most :data:`MAX_IMAGE_BYTES` of encoded input per image;
- at most :data:`MAX_DECODE_PIXELS` pixels decoded (a decompression-bomb guard);
- images with a side over :data:`MAX_SIDE` pixels are scaled down, aspect kept (the
  vision encoder resizes to a few hundred pixels anyway);
- at most :data:`MAX_IMAGES` images per request.
"""

from __future__ import annotations

import base64
import binascii
import io
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from terminus.errors import ChatImageError, InvalidParameterError

MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_DECODE_PIXELS = 80_000_000  # below Pillow's own bomb warning (~89 MP)
MAX_SIDE = 2048
MAX_IMAGES = 16
#: What Pillow may decode for a chat; everything becomes PNG or JPEG for llama.cpp.
ACCEPTED_FORMATS = frozenset({"PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF"})
_PASSED_THROUGH = frozenset({"PNG", "JPEG"})
_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")

#: Fetches an http(s) image URL and returns its bytes (the server passes one only when
#: the user allowed downloads).
Fetch = Callable[[str], bytes]


def prepare_image(source: Any, *, fetch: Fetch | None = None, where: str = "image") -> str:
    """Checked, size-limited PNG or JPEG bytes of ``source``, base64-encoded.

    ``source`` is bytes, a path (``str`` or ``Path``), a Pillow image, a ``data:`` URL,
    or an ``http(s)`` URL (only with ``fetch``).
    """
    return base64.b64encode(_normalized(_raw(source, fetch, where), where)).decode("ascii")


def image_from_base64(text: str, where: str = "image") -> str:
    """Ollama's shape: base64 image bytes (any accepted format) → checked base64."""
    return base64.b64encode(_normalized(_b64decode(text, where), where)).decode("ascii")


def check_encoded(value: str) -> str:
    """``Message.images`` entries are base64 PNG or JPEG (a cheap look at the magic)."""
    try:
        head = base64.b64decode(value[:16], validate=True)
    except (binascii.Error, ValueError):
        head = b""
    if not head.startswith(_MAGIC):
        raise ValueError(
            "Message.images holds base64-encoded PNG or JPEG bytes; pass a path, bytes or "
            'a Pillow image as {"type": "image", "image": ...} in the content instead'
        )
    return value


def _raw(source: Any, fetch: Fetch | None, where: str) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source)
    if _is_pil_image(source):
        buffer = io.BytesIO()
        source.save(buffer, format="PNG")
        return buffer.getvalue()
    if isinstance(source, str) and source.startswith("data:"):
        return _data_url(source, where)
    if isinstance(source, str) and source.split(":", 1)[0].lower() in ("http", "https"):
        if fetch is None:
            raise ChatImageError(
                f"{where}: image URLs are not fetched",
                hint="send the image as a data: URL, or allow image downloads "
                "(terminus serve --allow-image-urls)",
            )
        return fetch(source)
    if isinstance(source, str | Path):
        path = Path(source).expanduser()
        try:
            size = path.stat().st_size
            if size > MAX_IMAGE_BYTES:
                raise ChatImageError(_too_big(where, size))
            return path.read_bytes()
        except OSError as exc:
            raise ChatImageError(f"{where}: cannot read {str(source)!r}: {exc.strerror}") from exc
    raise ChatImageError(
        f"{where}: an image is bytes, a path, a Pillow image or a data: URL, "
        f"not {type(source).__name__}"
    )


def _data_url(url: str, where: str) -> bytes:
    header, sep, payload = url.partition(",")
    if not sep or ";base64" not in header:
        raise ChatImageError(f"{where}: a data URL must be base64: data:image/png;base64,...")
    return _b64decode(payload, where)


def _b64decode(text: str, where: str) -> bytes:
    if len(text) > MAX_IMAGE_BYTES * 4 // 3 + 4:
        raise ChatImageError(_too_big(where, len(text) * 3 // 4))
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ChatImageError(f"{where}: the image is not valid base64 ({exc})") from exc


def _normalized(data: bytes, where: str) -> bytes:
    """Decode in full; pass PNG/JPEG through, re-encode the rest (and big ones) as PNG."""
    if not data:
        raise ChatImageError(f"{where}: the image is empty")
    if len(data) > MAX_IMAGE_BYTES:
        raise ChatImageError(_too_big(where, len(data)))
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError as exc:  # pragma: no cover - pillow is a core dependency of vision
        raise ChatImageError(
            "images in chat need Pillow", hint="pip install 'terminus-sdk[vision]'"
        ) from exc
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                return _checked(image, data, where)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ChatImageError(_too_many_pixels(where)) from exc
    except UnidentifiedImageError as exc:
        raise ChatImageError(f"{where}: not an image Pillow can read") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ChatImageError(f"{where}: the image is corrupt or truncated ({exc})") from exc


def _checked(image: Any, data: bytes, where: str) -> bytes:
    fmt = image.format or "?"
    if fmt not in ACCEPTED_FORMATS:
        raise ChatImageError(
            f"{where}: {fmt} images are not supported",
            hint=f"use one of {', '.join(sorted(ACCEPTED_FORMATS))}",
        )
    width, height = image.size
    if width * height > MAX_DECODE_PIXELS:
        raise ChatImageError(_too_many_pixels(where, f"{width}x{height}"))
    if fmt == "JPEG" and max(width, height) > MAX_SIDE:
        # Let the JPEG decoder scale down by 2, 4 or 8 while decoding (still every byte).
        image.draft("RGB", (MAX_SIDE, MAX_SIDE))
    image.load()  # decodes every byte: truncation shows here
    if fmt in _PASSED_THROUGH and max(width, height) <= MAX_SIDE:
        return data
    return _png(image)


def _png(image: Any) -> bytes:
    from PIL import Image

    frame = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    if max(frame.size) > MAX_SIDE:
        frame.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS, reducing_gap=3.0)
    buffer = io.BytesIO()
    frame.save(buffer, format="PNG")
    return buffer.getvalue()


def _is_pil_image(value: Any) -> bool:
    module = type(value).__module__
    return module.startswith("PIL.") and hasattr(value, "save") and hasattr(value, "size")


def _too_many_pixels(where: str, size: str = "the image") -> str:
    limit = MAX_DECODE_PIXELS // 1_000_000
    return f"{where}: {size} is over {limit} megapixels; scale it down first"


def _too_big(where: str, size: int) -> str:
    return f"{where}: {size / 1e6:.1f} MB is over the {MAX_IMAGE_BYTES // (1024 * 1024)} MiB limit"


def split_content(data: dict[str, Any], fetch: Fetch | None = None) -> dict[str, Any]:
    """A message dict with content parts (and/or ``images``) → text ``content`` + ``images``.

    Parts: ``{"type": "text", "text": ...}``, ``{"type": "image", "image": path | bytes |
    Pillow image | data URL}`` and OpenAI's ``{"type": "image_url", "image_url": {"url":
    ...}}``. A message's images go before its text (llama.cpp sees them in that order).
    """
    out = dict(data)
    texts: list[str] = []
    images: list[str] = []
    for i, item in enumerate(out.pop("images", None) or ()):
        images.append(prepare_image(item, fetch=fetch, where=f"images[{i}]"))
    content = out.get("content")
    if isinstance(content, list):
        for j, part in enumerate(content):
            where = f"content[{j}]"
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                texts.append(str(part.get("text", "")))
            elif kind == "image":
                images.append(prepare_image(part.get("image"), fetch=fetch, where=where))
            elif kind == "image_url":
                url = part.get("image_url")
                url = url.get("url") if isinstance(url, dict) else url
                images.append(prepare_image(url, fetch=fetch, where=where))
            else:
                raise InvalidParameterError(
                    f"{where}: content parts are text, image or image_url, not {kind!r}"
                )
        out["content"] = "\n".join(texts)
    if len(images) > MAX_IMAGES:
        raise ChatImageError(f"{len(images)} images in one message; at most {MAX_IMAGES}")
    out["images"] = tuple(images)
    return out
