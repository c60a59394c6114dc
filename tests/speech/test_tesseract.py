"""The second OCR engine, Tesseract — only where the tesseract program is installed.

CI's fresh machine has no tesseract (it is a Debian package, not a PyPI one), so these
tests run only when ``TesseractEngine.probe()`` finds it; RapidOCR is the engine the
OCR tests always cover.
"""

from __future__ import annotations

import pytest
from speechkit import OCR_LINES, char_error_rate, render_line

from terminus import Terminus
from terminus.engines.tesseract import TesseractEngine
from terminus.errors import InvalidImageError

pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(
        not TesseractEngine.probe().ok, reason="tesseract is not installed on this machine"
    ),
]


def test_character_error_rate(speech_client: Terminus) -> None:
    """The same 20 lines (two fonts); measured CER 0.0% here."""
    fonts = ("pillow", "roboto")
    images = [render_line(line, fonts[i % 2]) for i, line in enumerate(OCR_LINES)]
    read = [
        speech_client.ocr(image, model="tesseract-eng").text.replace("\n", " ") for image in images
    ]
    cer = char_error_rate(OCR_LINES, read)
    print(f"tesseract CER {cer:.3%}")
    assert cer <= 0.02, [(r, h) for r, h in zip(OCR_LINES, read, strict=True) if r != h]


def test_blocks_boxes_and_bad_input(speech_client: Terminus) -> None:
    result = speech_client.ocr(render_line("Two words", "roboto"), model="tesseract-eng")
    (block,) = result.blocks
    assert block.text == "Two words" and 0.5 < block.confidence <= 1.0
    xs = [x for x, _ in block.box]
    assert 20 <= min(xs) < max(xs) <= result.width
    with pytest.raises(InvalidImageError):
        speech_client.ocr(b"not an image", model="tesseract-eng")
