"""Helpers shared by the image tests: the test card and client for the built SDXS model."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from terminus import Terminus
from terminus.models.card import LocalSource, ModelCard, ModelFile

MODEL = "sdxs-test"
SMALL = {"width": 64, "height": 64, "steps": 1}


def engine_threads() -> int:
    return int(os.environ.get("TERMINUS_TEST_THREADS", "1"))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def sdxs_card(files: dict[str, Path], card_id: str = MODEL) -> ModelCard:
    return ModelCard(
        id=card_id,
        capability="image",  # type: ignore[arg-type]
        engine="stable-diffusion",
        format="diffusers",
        files=tuple(
            ModelFile(name=name, sha256=_sha256(path), size=path.stat().st_size)
            for name, path in files.items()
        ),
        sources=(LocalSource(paths={name: str(path) for name, path in files.items()}),),
        defaults={"steps": 1, "cfg_scale": 1.0, "width": 512, "height": 512},
    )


def make_image_client(home: Path, card: ModelCard) -> Terminus:
    client = Terminus(home=home, allow_download=True, memory_budget="8G")
    client.catalog.register(card)
    return client
