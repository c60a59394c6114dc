"""Image generation on a real SDXS-512 model the session builds (see ``sdxs_builder``).

The folder (~0.9 GB of float16 safetensors) is written once per session and imported
once into a shared Terminus home; tests generate 64x64 images in 1-2 steps.
``TERMINUS_TEST_THREADS`` sets the engine threads (default 1: a spinning ggml thread pool
collapses when other processes share the cores, one thread does not).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from imagekit import MODEL, engine_threads, make_image_client, sdxs_card
from sdxs_builder import build_sdxs512

from terminus import Terminus
from terminus.models.card import ModelCard


@pytest.fixture(scope="session")
def sdxs_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    root = tmp_path_factory.mktemp("sdxs512")
    yield build_sdxs512(root)
    shutil.rmtree(root, ignore_errors=True)  # pytest keeps old temp dirs; this one is 0.9 GB


@pytest.fixture(scope="session")
def image_home(
    tmp_path_factory: pytest.TempPathFactory, sdxs_files: dict[str, Path]
) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("terminus-image")
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def sdxs(image_home: Path, sdxs_files: dict[str, Path]) -> ModelCard:
    return sdxs_card(sdxs_files)


@pytest.fixture(scope="module")
def image_client(image_home: Path, sdxs: ModelCard) -> Iterator[Terminus]:
    """The SDXS model loaded once per module, in its worker process."""
    client = make_image_client(image_home, sdxs)
    client.load_model(MODEL, threads=engine_threads())
    yield client
    client.close()
