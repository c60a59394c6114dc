"""What users pass as audio or images, turned into the bytes a request carries.

Audio: a path, encoded bytes, or a numpy array of samples (float in [-1, 1] or int16).
Images: a path, encoded bytes, a PIL image, or a numpy array (H×W or H×W×3/4, uint8).
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from terminus.errors import InputFileError, InvalidAudioError, InvalidImageError
from terminus.types.speech import AudioFormat

AudioLike = str | os.PathLike[str] | bytes | Any  # Any: a numpy array
ImageLike = str | os.PathLike[str] | bytes | Any  # Any: a PIL image or numpy array


def _read(path: str | os.PathLike[str]) -> bytes:
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise InputFileError(f"cannot read {os.fspath(path)}: {exc.strerror or exc}") from exc


def audio_payload(
    audio: AudioLike, sample_rate: int | None
) -> tuple[bytes, AudioFormat, int | None]:
    """(bytes, format, sample rate) for a ``TranscribeRequest``."""
    if isinstance(audio, str | os.PathLike):
        return _read(audio), "file", None
    if isinstance(audio, bytes | bytearray | memoryview):
        if sample_rate is not None:
            return bytes(audio), "pcm_s16le", sample_rate  # raw 16-bit PCM with its rate
        return bytes(audio), "file", None
    import numpy as np

    if not isinstance(audio, np.ndarray):
        raise InvalidAudioError(
            f"audio must be a path, bytes or a numpy array, not {type(audio).__name__}"
        )
    if audio.ndim == 2:  # (samples, channels) → mono
        audio = (
            audio.mean(axis=1)
            if audio.dtype.kind == "f"
            else audio.mean(axis=1).astype(audio.dtype)
        )
    if audio.ndim != 1:
        raise InvalidAudioError(f"audio arrays must be 1-D (mono) or 2-D, not {audio.ndim}-D")
    rate = sample_rate or 16_000
    if audio.dtype == np.int16:
        return audio.astype("<i2").tobytes(), "pcm_s16le", rate
    if audio.dtype.kind != "f":
        raise InvalidAudioError(f"audio arrays must be float or int16, not {audio.dtype}")
    return audio.astype("<f4").tobytes(), "pcm_f32le", rate


def image_payload(image: ImageLike) -> bytes:
    """Encoded image bytes for an ``OcrRequest`` (arrays and PIL images become PNG)."""
    if isinstance(image, str | os.PathLike):
        return _read(image)
    if isinstance(image, bytes | bytearray | memoryview):
        return bytes(image)
    from PIL import Image

    if not isinstance(image, Image.Image):
        import numpy as np

        if not isinstance(image, np.ndarray):
            raise InvalidImageError(
                f"an image must be a path, bytes, a PIL image or an array, not {type(image).__name__}"
            )
        if image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise InvalidImageError("image arrays must be uint8, H×W or H×W×channels")
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
