"""Helpers for the speech, OCR and translation tests: error rates, test sentences, rendered text."""

from __future__ import annotations

import importlib.util
import io
import re
from pathlib import Path
from typing import Any

import numpy as np

#: Twenty varied English sentences: numbers spelled out, questions, names, long and short.
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "How much wood would a woodchuck chuck if a woodchuck could chuck wood?",
    "The meeting starts at nine in the morning on Tuesday.",
    "She sells sea shells by the sea shore.",
    "Turn left at the second traffic light and park behind the library.",
    "My favorite season is autumn because the leaves change color.",
    "Can you recommend a good restaurant near the train station?",
    "The scientist recorded the temperature every hour for three days.",
    "We need two pounds of apples, a loaf of bread and some cheese.",
    "Music has the power to bring people together.",
    "The airplane landed safely despite the strong wind.",
    "Remember to water the plants while I am away on vacation.",
    "Learning a new language takes patience and practice.",
    "The children played football in the park until it got dark.",
    "Do not forget to lock the door when you leave the house.",
    "The museum opens its new exhibition next week.",
    "He drank a cup of hot coffee and read the newspaper.",
    "Our team finished the project two days ahead of schedule.",
    "The river flows quietly through the small green valley.",
]

#: Twenty lines for OCR: letters, digits and punctuation in plain printed text.
OCR_LINES = [
    "Invoice number 48213 due on March 3",
    "The quick brown fox jumps over the lazy dog",
    "Total amount: 1,254.90 EUR",
    "Meeting room B12 on the fourth floor",
    "Call us at 555 0199 for support",
    "Terminus reads text from images",
    "Order 7731 shipped to Lisbon",
    "Temperature 21 degrees, light rain",
    "Return the form before Friday",
    "Version 3.10 released today",
    "Keep calm and carry on reading",
    "Platform 9 departs at 14:35",
    "Fresh bread baked every morning",
    "Password must have 12 characters",
    "Library hours: 8 to 18 daily",
    "Chapter seven: The long winter",
    "Gate closes ten minutes before",
    "Best before 2027-05-31",
    "Parcel weight 2.4 kg",
    "Thank you for shopping with us",
]


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("-", " ")).split()


def edit_distance(a: list[Any] | str, b: list[Any] | str) -> int:
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def word_error_rate(references: list[str], hypotheses: list[str]) -> float:
    errors = sum(
        edit_distance(_words(r), _words(h)) for r, h in zip(references, hypotheses, strict=True)
    )
    return errors / sum(len(_words(r)) for r in references)


def char_error_rate(references: list[str], hypotheses: list[str]) -> float:
    def norm(text: str) -> str:
        return " ".join(text.split())

    errors = sum(
        edit_distance(norm(r), norm(h)) for r, h in zip(references, hypotheses, strict=True)
    )
    return errors / sum(len(norm(r)) for r in references)


def font_path() -> Path:
    """Roboto Regular from the font-roboto package (in the test extra), never a system font."""
    spec = importlib.util.find_spec("font_roboto")
    assert spec is not None and spec.origin, "font-roboto is not installed: run `make test`"
    return Path(spec.origin).parent / "files" / "Roboto-Regular.ttf"


def render_line(text: str, font: str, *, rotate: float = 0.0, noise: float = 0.0) -> bytes:
    """A PNG of one line of black text on white; ``font`` is "pillow" (Aileron) or "roboto"."""
    from PIL import Image, ImageDraw, ImageFont

    face = (
        ImageFont.load_default(size=40)
        if font == "pillow"
        else ImageFont.truetype(str(font_path()), size=40)
    )
    left, top, right, bottom = face.getbbox(text)
    image = Image.new("L", (right - left + 80, bottom - top + 80), 255)
    ImageDraw.Draw(image).text((40 - left, 40 - top), text, font=face, fill=0)
    if rotate:
        image = image.rotate(rotate, expand=True, fillcolor=255, resample=Image.Resampling.BICUBIC)
    if noise:
        rng = np.random.default_rng(7)
        pixels = np.asarray(image, dtype=np.float32) + rng.normal(
            0, noise, (image.height, image.width)
        )
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def encode_audio(pcm: np.ndarray, rate: int, container: str, codec: str) -> bytes:
    """Mono int16 samples encoded with PyAV (flac, mp3, ogg/opus…) into file bytes."""
    import av

    buffer = io.BytesIO()
    frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = rate
    out_rate = 48000 if codec == "libopus" else rate  # opus encodes 48 kHz only
    frames = av.AudioResampler(format="s16", layout="mono", rate=out_rate).resample(frame)
    with av.open(buffer, "w", format=container) as output:
        stream = output.add_stream(codec, rate=out_rate)
        stream.layout = "mono"
        for each in frames:
            for packet in stream.encode(each):
                output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
    return buffer.getvalue()
