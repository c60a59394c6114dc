"""Audio payloads to 16 kHz mono float32, the one layout speech models read.

Encoded files (wav, mp3, flac, ogg, …) are decoded with PyAV; raw PCM is taken as
it is and resampled linearly. Anything undecodable is an ``InvalidAudioError``.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from terminus.errors import InvalidAudioError
from terminus.types.speech import TranscribeRequest

if TYPE_CHECKING:
    import numpy as np

SAMPLE_RATE = 16_000
#: Peak amplitude under which audio counts as silence: no model is run on it, because
#: Whisper invents text ("Thank you.") for silence.
SILENCE_PEAK = 2e-3


def decode_request_audio(request: TranscribeRequest) -> np.ndarray[Any, Any]:
    if not request.audio:
        raise InvalidAudioError("the audio is empty (0 bytes)")
    if request.audio_format == "file":
        samples = _decode_file(request.audio)
    else:
        if request.sample_rate is None:
            raise InvalidAudioError("raw PCM audio needs its sample_rate")
        samples = pcm_to_float(request.audio, request.audio_format)
        samples = resample(samples, request.sample_rate, SAMPLE_RATE)
    if samples.size == 0:
        raise InvalidAudioError("the audio has no samples")
    return samples


def pcm_to_float(data: bytes, audio_format: str) -> np.ndarray[Any, Any]:
    import numpy as np

    width = 4 if audio_format == "pcm_f32le" else 2
    if len(data) % width:
        raise InvalidAudioError(
            f"{audio_format} audio must be a whole number of {width}-byte samples"
        )
    if audio_format == "pcm_f32le":
        samples = np.frombuffer(data, dtype="<f4").astype(np.float32)
        if not np.isfinite(samples).all():
            raise InvalidAudioError("the PCM samples contain NaN or infinity")
        return samples
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


def resample(samples: np.ndarray[Any, Any], rate: int, target: int) -> np.ndarray[Any, Any]:
    import numpy as np

    if rate == target or samples.size == 0:
        return samples
    n_out = max(1, round(samples.size * target / rate))
    positions = np.arange(n_out, dtype=np.float64) * (rate / target)
    return np.interp(positions, np.arange(samples.size), samples).astype(np.float32)


def is_silent(samples: np.ndarray[Any, Any]) -> bool:
    import numpy as np

    return float(np.max(np.abs(samples))) < SILENCE_PEAK


def _decode_file(data: bytes) -> np.ndarray[Any, Any]:
    import av
    from faster_whisper.audio import decode_audio

    try:
        samples: np.ndarray[Any, Any] = decode_audio(io.BytesIO(data), sampling_rate=SAMPLE_RATE)
    except (av.error.FFmpegError, IndexError, ValueError) as exc:
        # IndexError: the container has no audio stream (e.g. an image).
        raise InvalidAudioError(f"cannot decode the audio: {_reason(exc)}") from exc
    return samples


def _reason(exc: Exception) -> str:
    if isinstance(exc, IndexError):
        return "the file has no audio stream"
    if "Invalid data" in str(exc):
        return "not an audio file PyAV can read (wav, mp3, flac, ogg, …)"
    return str(exc) or type(exc).__name__
