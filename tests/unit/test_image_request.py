"""Image requests: validation into typed errors before any model loads."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest

from terminus import Terminus
from terminus.client.image import IMAGE_MODEL_ENV, image_request
from terminus.errors import (
    CapabilityError,
    GenerationCancelledError,
    InputFileError,
    InvalidParameterError,
)
from terminus.models.card import ModelCard


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"width": 100}, "multiple of 8"),
        ({"height": 32}, "greater than or equal to 64"),
        ({"steps": 0}, "steps"),
        ({"sampler": "magic"}, "unknown sampler"),
        ({"scheduler": "someday"}, "unknown scheduler"),
        ({"strength": 0.0}, "strength"),
        ({"seed": -1}, "seed"),
        ({"count": 9}, "count"),
        ({"guidance": 3}, "guidance"),
    ],
)
def test_bad_parameters_are_invalid_parameter_errors(
    params: dict[str, object], fragment: str
) -> None:
    with pytest.raises(InvalidParameterError, match=fragment):
        image_request("any-model", "a cat", **params)


def test_a_model_must_be_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(IMAGE_MODEL_ENV, raising=False)
    with pytest.raises(InvalidParameterError, match="no image model"):
        image_request(None, "a cat")
    monkeypatch.setenv(IMAGE_MODEL_ENV, "from-env")
    assert image_request(None, "a cat").model == "from-env"


def test_init_image_accepts_paths_bytes_and_pil(tmp_path: Path) -> None:
    from PIL import Image

    image = Image.new("RGB", (8, 8), (10, 20, 30))
    path = tmp_path / "init.png"
    image.save(path)
    from_path = image_request("m", "x", init_image=path).init_image
    from_pil = image_request("m", "x", init_image=image).init_image
    assert from_path == path.read_bytes()
    assert from_pil is not None and Image.open(io.BytesIO(from_pil)).size == (8, 8)
    assert image_request("m", "x", init_image=b"raw").init_image == b"raw"
    with pytest.raises(InputFileError):
        image_request("m", "x", init_image=tmp_path / "missing.png")
    with pytest.raises(InvalidParameterError, match="init_image must be"):
        image_request("m", "x", init_image=3.5)


def test_a_chat_model_cannot_generate_images(
    client: Terminus, make_fake_card: Callable[..., ModelCard]
) -> None:
    client.catalog.register(make_fake_card("fake-chat"))
    with pytest.raises(CapabilityError, match="not an image model"):
        client.generate_image("fake-chat", "a cat").result()


def test_a_stream_without_a_result_reports_the_cancel(client: Terminus) -> None:
    from terminus.client.image import ImageStream

    stream = ImageStream(lambda cancel: iter(()))
    with pytest.raises(GenerationCancelledError):
        stream.result()
