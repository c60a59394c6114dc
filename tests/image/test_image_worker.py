"""Supervision of the worker process: cancel, native crashes, a bad model, early exit."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from imagekit import MODEL, SMALL, engine_threads, make_image_client, sdxs_card

from terminus import Terminus
from terminus.engines.stable_diffusion import StableDiffusionModel
from terminus.errors import GenerationCancelledError, InvalidModelFileError, WorkerCrashedError
from terminus.models.card import ModelCard
from terminus.types.image import ImageProgress

LONG = {**SMALL, "steps": 150}  # long enough that it is still sampling when stopped


def worker(client: Terminus) -> StableDiffusionModel:
    with client.manager.use(MODEL) as model:
        assert isinstance(model, StableDiffusionModel)
        return model


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_cancel_kills_the_worker_and_the_next_request_starts_a_fresh_one(
    image_client: Terminus,
) -> None:
    pid = worker(image_client).worker_pid
    assert pid is not None
    stream = image_client.generate_image("a long one", model=MODEL, seed=1, **LONG)
    seen: list[ImageProgress] = []
    with pytest.raises(GenerationCancelledError):
        for event in stream:
            assert isinstance(event, ImageProgress)
            seen.append(event)
            stream.cancel()
    assert 1 <= len(seen) < 150
    assert not alive(pid)
    assert worker(image_client).worker_pid is None
    result = image_client.generate_image("after a cancel", model=MODEL, seed=2, **SMALL).result()
    assert result.stats.load_s > 0  # it reloaded the model in a new worker
    assert worker(image_client).worker_pid not in (None, pid)


def test_a_native_crash_is_a_typed_error_and_the_host_survives(image_client: Terminus) -> None:
    before = image_client.generate_image("steady", model=MODEL, seed=9, **SMALL).result()
    pid = worker(image_client).worker_pid
    assert pid is not None
    stream = image_client.generate_image("a long one", model=MODEL, seed=1, **LONG)
    with pytest.raises(WorkerCrashedError, match="SIGSEGV"):
        for _ in stream:
            os.kill(pid, signal.SIGSEGV)  # what a native fault in the engine does
    after = image_client.generate_image("steady", model=MODEL, seed=9, **SMALL).result()
    assert after.image.rgb == before.image.rgb  # a fresh worker, the same model


def test_leaving_the_stream_early_stops_the_generation(image_client: Terminus) -> None:
    image_client.generate_image("warm", model=MODEL, seed=1, **SMALL).result()
    pid = worker(image_client).worker_pid
    assert pid is not None
    stream = iter(image_client.generate_image("a long one", model=MODEL, seed=1, **LONG))
    assert isinstance(next(stream), ImageProgress)
    stream.close()  # type: ignore[attr-defined]
    assert not alive(pid)


@pytest.fixture
def bad_model_client(image_home: Path, tmp_path: Path) -> Iterator[tuple[Terminus, ModelCard]]:
    """A well-formed safetensors file that stable-diffusion.cpp cannot make a model of."""
    from safetensors.numpy import save_file

    path = tmp_path / "not-a-diffusion-model.safetensors"
    save_file({"foo.weight": np.ones((4, 4), dtype=np.float32)}, str(path))
    card = sdxs_card({"model.safetensors": path}, card_id="not-a-diffusion-model")
    card = card.model_copy(update={"format": "safetensors"})
    client = make_image_client(image_home, card)
    yield client, card
    client.close()


def test_a_bad_model_file_raises_a_typed_error(
    bad_model_client: tuple[Terminus, ModelCard],
) -> None:
    client, card = bad_model_client
    with pytest.raises(InvalidModelFileError, match="could not load"):
        client.load_model(card.id, threads=engine_threads())
    assert client.loaded_models() == []
