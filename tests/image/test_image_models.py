"""Adding a downloaded image model through a preset: hashed into the cache, then generated."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner
from imagekit import SMALL, engine_threads

from terminus import Terminus
from terminus.cli.main import cli
from terminus.client.image_models import add_image_model
from terminus.errors import InvalidParameterError, ModelNotFoundError
from terminus.models.cache import ModelCache
from terminus.models.catalog import Catalog


def test_a_downloaded_sdxs_folder_becomes_a_pinned_card_that_generates(
    sdxs_files: dict[str, Path], tmp_path: Path
) -> None:
    folder = next(iter(sdxs_files.values())).parents[1]
    home = tmp_path / "home"
    added = CliRunner().invoke(
        cli, ["--home", str(home), "image-models", "add", str(folder), "--preset", "sdxs"]
    )
    assert added.exit_code == 0, added.stderr
    assert "added sdxs-512-dreamshaper (3 files" in added.stdout
    with Terminus(home=home, allow_download=False) as client:
        card = client.catalog.get("sdxs")  # the preset's alias
        pinned = {f.name: f.sha256 for f in card.files}
        unet = "unet/diffusion_pytorch_model.safetensors"
        assert pinned[unet] == hashlib.sha256(sdxs_files[unet].read_bytes()).hexdigest()
        assert card.defaults["steps"] == 1 and card.format == "diffusers"
        client.load_model("sdxs", threads=engine_threads())
        result = client.generate_image("a cat", model="sdxs", seed=1, width=64, height=64).result()
        assert result.stats.steps == 1 and result.stats.cfg_scale == 1.0  # the preset's
        assert result.image.width == SMALL["width"]


def test_bad_folders_and_presets_are_typed_errors(tmp_path: Path) -> None:
    catalog, cache = Catalog(tmp_path / "cards"), ModelCache(tmp_path)
    (tmp_path / "half" / "unet").mkdir(parents=True)
    (tmp_path / "half" / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"x")
    with pytest.raises(InvalidParameterError, match="lacks text_encoder/model.safetensors"):
        add_image_model(catalog, cache, tmp_path / "half", preset="sdxs-512-dreamshaper")
    with pytest.raises(ModelNotFoundError, match="no image preset"):
        add_image_model(catalog, cache, tmp_path / "half", preset="dall-e")
    assert not (tmp_path / "blobs").exists() or not any((tmp_path / "blobs").iterdir())
    assert catalog._user_cards() == []
