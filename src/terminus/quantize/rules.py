"""Which ggml type each tensor gets, following llama.cpp's ``llama_tensor_get_type``.

This build of xllamacpp exports ggml's per-tensor quantizers but not
``llama_model_quantize``, so the per-tensor choices of the mixed types are
reproduced here (for the dense llama/qwen2 layouts Terminus quantizes):

- 1-D tensors (norms, biases) stay F32;
- the output matrix (or the token embedding when it is tied) gets Q6_K, or Q8_0
  for Q8_0;
- Q4_K_M / Q5_K_M give ``attn_v`` and ``ffn_down`` Q6_K on the layers
  ``use_more_bits`` picks (first and last eighth, every third in between);
- K-quants need rows that are a multiple of 256 values; other rows fall back as
  llama.cpp does (Q4_K→Q5_0, Q5_K→Q5_1, Q6_K→Q8_0, Q3_K/Q2_K→Q4_0... here Q5_0).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from terminus.errors import UnknownQuantizationError


@dataclass(frozen=True)
class Scheme:
    name: str
    default: str  # ggml type of most matrices
    file_type: int  # llama_ftype written to general.file_type
    more_bits: str | None = None  # type for attn_v / ffn_down on use_more_bits layers


SCHEMES: dict[str, Scheme] = {
    "F32": Scheme("F32", "F32", 0),
    "F16": Scheme("F16", "F16", 1),
    "Q8_0": Scheme("Q8_0", "Q8_0", 7),
    "Q4_0": Scheme("Q4_0", "Q4_0", 2),
    "Q4_1": Scheme("Q4_1", "Q4_1", 3),
    "Q5_0": Scheme("Q5_0", "Q5_0", 8),
    "Q5_1": Scheme("Q5_1", "Q5_1", 9),
    "Q4_K_S": Scheme("Q4_K_S", "Q4_K", 14),
    "Q4_K_M": Scheme("Q4_K_M", "Q4_K", 15, more_bits="Q6_K"),
    "Q5_K_M": Scheme("Q5_K_M", "Q5_K", 17, more_bits="Q6_K"),
    "Q6_K": Scheme("Q6_K", "Q6_K", 18),
}

_K_FALLBACK = {"Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0", "Q3_K": "Q5_0", "Q2_K": "Q5_0"}
_BLOCK = re.compile(r"^blk\.(\d+)\.")


def scheme(name: str) -> Scheme:
    key = name.upper()
    if key not in SCHEMES:
        raise UnknownQuantizationError(
            f"unknown quantization type {name!r}", hint="one of " + ", ".join(SCHEMES)
        )
    return SCHEMES[key]


def use_more_bits(i_layer: int, n_layers: int) -> bool:
    return (
        i_layer < n_layers // 8
        or i_layer >= 7 * n_layers // 8
        or (i_layer - n_layers // 8) % 3 == 2
    )


def tensor_type(
    plan: Scheme, name: str, shape: tuple[int, ...], n_layers: int, *, has_output: bool
) -> str:
    """The ggml type for one tensor; ``shape`` is numpy order (rows, cols)."""
    if plan.default in ("F32", "F16"):
        return plan.default if len(shape) >= 2 else "F32"
    if len(shape) < 2 or not name.endswith(".weight"):
        return "F32"
    if name == "output.weight" or (not has_output and name == "token_embd.weight"):
        chosen = "Q8_0" if plan.default == "Q8_0" else "Q6_K"
    elif plan.more_bits and (".attn_v." in name or ".ffn_down." in name):
        match = _BLOCK.match(name)
        layer = int(match.group(1)) if match else 0
        chosen = plan.more_bits if use_more_bits(layer, n_layers) else plan.default
    else:
        chosen = plan.default
    if chosen in _K_FALLBACK and shape[-1] % 256:
        chosen = _K_FALLBACK[chosen]
    return chosen
