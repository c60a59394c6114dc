"""The full path on a real stable-diffusion.cpp model: client -> manager -> worker -> image."""

from __future__ import annotations

import numpy as np
from imagekit import MODEL, SMALL, engine_threads

from terminus import Terminus
from terminus.types.image import ImageProgress, ImageResult


def pixels(result: ImageResult) -> np.ndarray:
    return np.frombuffer(result.image.rgb, dtype=np.uint8).astype(np.float32)


def test_generates_rgb_images_with_progress_and_stats(image_client: Terminus) -> None:
    events = list(
        image_client.generate_image(MODEL, "a lighthouse at dusk", seed=7, **{**SMALL, "steps": 2})
    )
    progress = [e for e in events if isinstance(e, ImageProgress)]
    assert [(p.step, p.total) for p in progress] == [(1, 2), (2, 2)]
    assert all(p.seconds > 0 for p in progress)
    result = events[-1]
    assert isinstance(result, ImageResult)
    image = result.image.to_pil()
    assert image.mode == "RGB" and image.size == (64, 64)
    assert len(result.image.rgb) == 64 * 64 * 3
    assert pixels(result).std() > 1.0  # not a blank image
    stats = result.stats
    assert (stats.seed, stats.steps, stats.width, stats.height) == (7, 2, 64, 64)
    assert stats.threads == engine_threads()  # passed through, not the wrapper's half-the-CPUs
    assert stats.cfg_scale == 1.0  # the card's default
    assert stats.generate_s > 0 and stats.total_s >= stats.generate_s
