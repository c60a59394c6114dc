"""OCR on the real PP-OCR models (RapidOCR) with lines rendered here by Pillow.

Fonts: Pillow's bundled Aileron and Roboto from the font-roboto package, so the test
needs no system font.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from speechkit import OCR_LINES, char_error_rate, render_line

from terminus import Terminus
from terminus.errors import CapabilityError, InputFileError, InvalidImageError

pytestmark = pytest.mark.real

OCR = "pp-ocrv6-small"


def _variant(i: int) -> dict[str, object]:
    """Alternate the two fonts; line 5 is rotated by 4 degrees and line 9 noisy."""
    options: dict[str, object] = {"font": "pillow" if i % 2 == 0 else "roboto"}
    if i == 5:
        options["rotate"] = 4.0
    if i == 9:
        options["noise"] = 40.0
    return options


def test_character_error_rate(speech_client: Terminus) -> None:
    """Measured CER 0.0% here over the 20 lines (2 fonts, rotated, noisy); the floor is 2%."""
    images = [render_line(line, **_variant(i)) for i, line in enumerate(OCR_LINES)]  # type: ignore[arg-type]
    read = [speech_client.ocr(OCR, image).text.replace("\n", " ") for image in images]
    cer = char_error_rate(OCR_LINES, read)
    print(f"OCR CER {cer:.3%}")
    assert cer <= 0.02, [(r, h) for r, h in zip(OCR_LINES, read, strict=True) if r != h]


def test_blocks_in_reading_order_with_boxes(speech_client: Terminus) -> None:
    from PIL import Image, ImageDraw, ImageFont

    face = ImageFont.load_default(size=36)
    image = Image.new("RGB", (900, 260), "white")
    draw = ImageDraw.Draw(image)
    # Drawn bottom line first and the right column before the left one.
    draw.text((40, 170), "third line here", font=face, fill="black")
    draw.text((520, 30), "right column", font=face, fill="black")
    draw.text((40, 30), "left column", font=face, fill="black")
    draw.text((40, 100), "second line", font=face, fill="black")
    result = speech_client.ocr(OCR, image)
    assert [b.text for b in result.blocks] == [
        "left column",
        "right column",
        "second line",
        "third line here",
    ]
    assert result.text == "left column right column\nsecond line\nthird line here"
    assert (result.width, result.height) == (900, 260)
    left = result.blocks[0]
    xs, ys = zip(*left.box, strict=True)
    assert 30 <= min(xs) <= 60 and 20 <= min(ys) <= 50 and max(xs) < 450
    assert all(0.5 <= b.confidence <= 1.0 for b in result.blocks)


def test_inputs_path_bytes_array_pil(speech_client: Terminus, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    png = render_line("Same text four ways", "roboto")
    path = tmp_path / "line.png"
    path.write_bytes(png)
    pil = Image.open(io.BytesIO(png))
    texts = {
        speech_client.ocr(OCR, source).text
        for source in (path, png, pil, np.asarray(pil.convert("RGB")))
    }
    assert texts == {"Same text four ways"}


def test_blank_image_has_no_blocks(speech_client: Terminus) -> None:
    from PIL import Image

    result = speech_client.ocr(OCR, Image.new("RGB", (300, 100), "white"))
    assert result.blocks == () and result.text == ""


def test_corrupt_and_missing_images(speech_client: Terminus, tmp_path) -> None:  # type: ignore[no-untyped-def]
    png = render_line("truncated", "pillow")
    with pytest.raises(InvalidImageError):
        speech_client.ocr(OCR, png[: len(png) // 2])
    with pytest.raises(InvalidImageError, match="not an image"):
        speech_client.ocr(OCR, b"definitely not an image")
    with pytest.raises(InvalidImageError, match="empty"):
        speech_client.ocr(OCR, b"")
    with pytest.raises(InputFileError):
        speech_client.ocr(OCR, tmp_path / "missing.png")
    with pytest.raises(CapabilityError):
        speech_client.ocr("whisper-tiny.en", png)
    assert speech_client.ocr(OCR, render_line("still alive", "pillow")).text == "still alive"
