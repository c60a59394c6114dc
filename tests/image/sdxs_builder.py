"""Writes an SDXS-512 model in the diffusers folder layout with random weights.

stable-diffusion.cpp hard-codes the layer sizes of each architecture it detects, so
a tiny model cannot load; SDXS-512 is the smallest one it supports. Its tensor names
and shapes come from ``tests/data/sdxs512_layout.json``. Weights are random, scaled by
1/sqrt(fan_in) (norm weights 1, biases 0) so that the prompt and the seed both change
the image measurably; float16 keeps the folder at ~0.9 GB.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

LAYOUT = Path(__file__).resolve().parent.parent / "data" / "sdxs512_layout.json"

#: folder in the layout JSON -> the file stable-diffusion.cpp reads in a diffusers folder
FILES = {
    "unet": "unet/diffusion_pytorch_model.safetensors",
    "text_encoder": "text_encoder/model.safetensors",
    "vae": "vae/diffusion_pytorch_model.safetensors",
}


def _tensor(name: str, shape: list[int], rng: np.random.Generator) -> np.ndarray:
    if name.endswith(".bias") or len(shape) == 0:
        return np.zeros(shape, dtype=np.float16)
    if len(shape) == 1:  # norm scales
        return np.ones(shape, dtype=np.float16)
    fan_in = math.prod(shape[1:]) if "embedding" not in name else shape[-1]
    # uniform in [-sqrt(3), sqrt(3)] has unit variance and is cheaper to draw than normal
    scale = math.sqrt(3.0 / fan_in)
    values = rng.random(math.prod(shape), dtype=np.float32)
    return ((values * 2.0 - 1.0) * scale).astype(np.float16).reshape(shape)


def build_sdxs512(root: Path, seed: int = 0) -> dict[str, Path]:
    """Write the three safetensors files under ``root``; returns them by card file name."""
    from safetensors.numpy import save_file

    layout = json.loads(LAYOUT.read_text())
    rng = np.random.default_rng(seed)
    written: dict[str, Path] = {}
    for part, file_name in FILES.items():
        tensors = {name: _tensor(name, shape, rng) for name, shape in layout[part].items()}
        path = root / file_name
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(path))
        written[file_name] = path
    return written
