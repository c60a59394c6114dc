"""Images with known content, rendered with Pillow for the vision tests."""

from __future__ import annotations

import base64
import io
import struct
import zlib

from PIL import Image, ImageDraw


def encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def square(colour: str, size: tuple[int, int] = (200, 150), fmt: str = "PNG") -> bytes:
    """A picture of one colour (the colour projector reads colours only)."""
    return encoded(Image.new("RGB", size, colour), fmt)


def text_line(text: str = "HELLO VISION") -> bytes:
    image = Image.new("RGB", (320, 80), "white")
    ImageDraw.Draw(image).text((10, 30), text, fill="black")
    return encoded(image)


def data_url(data: bytes, kind: str = "png") -> str:
    return f"data:image/{kind};base64," + base64.b64encode(data).decode()


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (its pixels are never decoded)."""
    real = encoded(Image.new("RGB", (1, 1), "red"))
    ihdr = struct.pack(">II", width, height) + real[24:29]
    chunk = b"IHDR" + ihdr
    return (
        real[:8] + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk)) + real[33:]
    )
