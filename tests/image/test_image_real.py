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
        image_client.generate_image(
            "a lighthouse at dusk", model=MODEL, seed=7, **{**SMALL, "steps": 2}
        )
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


def _generate(client: Terminus, prompt: str, seed: int, **params: object) -> np.ndarray:
    return pixels(
        client.generate_image(prompt, model=MODEL, seed=seed, **{**SMALL, **params}).result()
    )


def test_prompt_and_seed_each_change_the_image_and_repeat_exactly(image_client: Terminus) -> None:
    base = _generate(image_client, "a red apple on a table", seed=11)
    again = _generate(image_client, "a red apple on a table", seed=11)
    other_prompt = _generate(image_client, "a snowy mountain village", seed=11)
    other_seed = _generate(image_client, "a red apple on a table", seed=12)
    assert np.array_equal(base, again)
    assert np.abs(base - other_prompt).mean() > 1.0
    assert np.abs(base - other_seed).mean() > 1.0


def test_count_gives_images_from_consecutive_seeds(image_client: Terminus) -> None:
    result = image_client.generate_image("a boat", model=MODEL, seed=20, count=2, **SMALL).result()
    assert len(result.images) == 2
    second_alone = _generate(image_client, "a boat", seed=21)
    first, second = (np.frombuffer(i.rgb, dtype=np.uint8).astype(np.float32) for i in result.images)
    assert np.abs(first - second).mean() > 1.0
    assert np.array_equal(second, second_alone)


def test_image_to_image_starts_from_the_init_image(image_client: Terminus) -> None:
    from PIL import Image

    plain = _generate(image_client, "a cat", seed=3)
    white = Image.new("RGB", (64, 64), (255, 255, 255))
    black = Image.new("RGB", (64, 64), (0, 0, 0))
    from_white = _generate(image_client, "a cat", seed=3, init_image=white, strength=0.5)
    from_black = _generate(image_client, "a cat", seed=3, init_image=black, strength=0.5)
    assert np.abs(from_white - plain).mean() > 1.0
    assert np.abs(from_white - from_black).mean() > 1.0


async def test_async_client_streams_progress_then_the_result(image_client: Terminus) -> None:
    from terminus import AsyncTerminus

    client = AsyncTerminus(image_client)  # the same loaded model, awaited
    stream = client.generate_image("a lighthouse", model=MODEL, seed=5, **{**SMALL, "steps": 2})
    events = [event async for event in stream]
    assert [type(e).__name__ for e in events] == ["ImageProgress", "ImageProgress", "ImageResult"]
    result = await stream.result()
    assert result.image.width == 64
