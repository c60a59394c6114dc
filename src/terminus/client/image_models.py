"""Known image models and how to add a downloaded copy to the catalog.

No package registry carries image-generation weights and their publishers give no
sha256 we could pin in a built-in card, so these are presets, not cards: download the
files from the listed address, then ``add_image_model`` hashes what you downloaded
into the cache and writes a user card pinned to those hashes (trust on first use;
every later load verifies against them, and the card says so).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from terminus.errors import InvalidParameterError, ModelNotFoundError
from terminus.models.cache import ModelCache
from terminus.models.card import LocalSource, ModelCard, ModelFile
from terminus.models.catalog import Catalog
from terminus.models.progress import NullProgress, Progress

#: The files stable-diffusion.cpp reads in a diffusers folder.
DIFFUSERS_FILES = (
    "unet/diffusion_pytorch_model.safetensors",
    "text_encoder/model.safetensors",
    "vae/diffusion_pytorch_model.safetensors",
)


@dataclass(frozen=True)
class ImagePreset:
    id: str
    name: str
    url: str  # where to download it (a Hugging Face repository or file)
    layout: str  # "diffusers" (a folder) or "file" (one .safetensors / .gguf)
    size: str
    license: str
    defaults: dict[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    note: str = ""


PRESETS = {
    p.id: p
    for p in (
        ImagePreset(
            "sdxs-512-dreamshaper",
            "SDXS-512-DreamShaper (one-step SD1 distillation, tiny autoencoder)",
            "https://huggingface.co/IDKiro/sdxs-512-dreamshaper",
            "diffusers",
            "~1.8 GB",
            "see the model page",
            {"steps": 1, "cfg_scale": 1.0, "width": 512, "height": 512},
            ("sdxs",),
            "cfg 1 and 1 step are required; ~14 s per 512x512 image on 2 cores",
        ),
        ImagePreset(
            "sd-turbo",
            "SD-Turbo (SD 2.1 distilled for 1-4 steps)",
            "https://huggingface.co/stabilityai/sd-turbo/blob/main/sd_turbo.safetensors",
            "file",
            "a Q8_0 GGUF conversion is ~2 GB",
            "sai-nc-community",
            {"steps": 1, "cfg_scale": 1.0, "width": 512, "height": 512},
            ("turbo",),
            "1-4 steps at cfg 1",
        ),
        ImagePreset(
            "sd1.5-q4_0",
            "Stable Diffusion 1.5, GGUF Q4_0",
            "https://huggingface.co/second-state/stable-diffusion-v1-5-GGUF",
            "file",
            "",
            "creativeml-openrail-m",
            {"steps": 20, "cfg_scale": 7.0, "width": 512, "height": 512},
            ("sd1.5",),
        ),
        ImagePreset(
            "sd1.5-q8_0",
            "Stable Diffusion 1.5, GGUF Q8_0",
            "https://huggingface.co/second-state/stable-diffusion-v1-5-GGUF",
            "file",
            "",
            "creativeml-openrail-m",
            {"steps": 20, "cfg_scale": 7.0, "width": 512, "height": 512},
        ),
    )
}

#: A fast decoder for SD1/SD2 models; pass its file as ``taesd`` when adding one.
TAESD_URL = "https://huggingface.co/madebyollin/taesd/blob/main/diffusion_pytorch_model.safetensors"


def _files_of(path: Path, layout: str) -> dict[str, Path]:
    if layout == "diffusers":
        if not path.is_dir():
            raise InvalidParameterError(f"{path} must be the model's folder (diffusers layout)")
        files = {name: path / name for name in DIFFUSERS_FILES}
        missing = [name for name, p in files.items() if not p.is_file()]
        if missing:
            raise InvalidParameterError(f"{path} lacks {', '.join(missing)}")
        return files
    if not path.is_file():
        raise InvalidParameterError(f"{path} is not a file")
    return {"model" + path.suffix.lower(): path}


def add_image_model(
    catalog: Catalog,
    cache: ModelCache,
    path: str | Path,
    *,
    preset: str,
    model_id: str | None = None,
    taesd: str | Path | None = None,
    progress: Progress | None = None,
) -> ModelCard:
    """Hash downloaded files into the cache and save a card pinned to those hashes."""
    chosen = PRESETS.get(preset) or next((p for p in PRESETS.values() if preset in p.aliases), None)
    if chosen is None:
        raise ModelNotFoundError(
            f"no image preset {preset!r}", hint=f"one of {', '.join(sorted(PRESETS))}"
        )
    source = Path(path).expanduser().resolve()
    files = _files_of(source, chosen.layout)
    defaults = dict(chosen.defaults)
    if taesd is not None:
        files["taesd.safetensors"] = Path(taesd).expanduser().resolve()
        defaults["taesd"] = "taesd.safetensors"
    entries: list[ModelFile] = []
    for name, file_path in files.items():
        if not file_path.is_file():
            raise InvalidParameterError(f"{file_path} is not a file")
        entries.append(cache.import_path(file_path, progress or NullProgress(), name=name))
    card = ModelCard(
        id=model_id or chosen.id,
        name=chosen.name,
        aliases=chosen.aliases if model_id is None else (),
        capability="image",  # type: ignore[arg-type]
        engine="stable-diffusion",
        format="diffusers" if chosen.layout == "diffusers" else source.suffix.lstrip(".").lower(),
        license=chosen.license,
        description=(
            f"{chosen.note + '; ' if chosen.note else ''}from {chosen.url}; sha256 pinned from "
            f"the copy added from {source} (no published hash to check it against)"
        ),
        files=tuple(entries),
        sources=(LocalSource(paths={name: str(p) for name, p in files.items()}),),
        defaults=defaults,
        user_added=True,
    )
    catalog.save_user_card(card)
    cache.files(card)  # link models/<id>/ with the folder layout the engine reads
    return card
