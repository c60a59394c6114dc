"""LoRA layers on a PyTorch model, and their export as a llama.cpp GGUF adapter.

``y = W x + (alpha / rank) · B A x`` with ``A`` (rank × in) and ``B`` (out × rank);
B starts at zero so training starts from the base model exactly. llama.cpp
applies a GGUF adapter the same way (scale ``alpha / rank`` times the request's
scale), so the exported tensors are A and B as they are, except that for the
llama architecture the rows of B for q and k get the permutation the GGUF
conversion applied to those weights.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from terminus.engines.llamacpp_lora import BASE_ID_KEY, BASE_SHA256_KEY
from terminus.errors import InvalidParameterError
from terminus.models.gguf_io import atomic_writer, gguf_tensor_name

ALL_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def _lora_class() -> Any:
    import torch

    class LoRALinear(torch.nn.Module):
        def __init__(self, base: torch.nn.Linear, rank: int, alpha: float) -> None:
            super().__init__()
            self.base = base
            self.rank = rank
            self.alpha = alpha
            self.scaling = alpha / rank
            self.lora_a = torch.nn.Parameter(torch.empty(rank, base.in_features))
            self.lora_b = torch.nn.Parameter(torch.zeros(base.out_features, rank))
            torch.nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.base(x) + (x @ self.lora_a.T @ self.lora_b.T) * self.scaling

    return LoRALinear


def add_lora(model: Any, targets: tuple[str, ...], rank: int, alpha: float) -> dict[str, Any]:
    """Freeze ``model`` and wrap the targeted linear layers; returns {module name: LoRA layer}."""
    import torch

    unknown = set(targets) - set(ALL_TARGETS)
    if unknown or not targets:
        raise InvalidParameterError(
            f"unknown LoRA target modules {sorted(unknown)}; choose from {', '.join(ALL_TARGETS)}"
        )
    if rank < 1:
        raise InvalidParameterError("LoRA rank must be at least 1")
    lora_linear = _lora_class()
    for param in model.parameters():
        param.requires_grad_(False)
    wrapped: dict[str, Any] = {}
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            if isinstance(child, torch.nn.Linear) and child_name in targets:
                layer = lora_linear(child, rank, alpha)
                setattr(module, child_name, layer)
                wrapped[full] = layer
    return wrapped


def lora_state(layers: dict[str, Any]) -> dict[str, Any]:
    return {
        f"{name}.{part}": getattr(layer, part).detach().clone()
        for name, layer in layers.items()
        for part in ("lora_a", "lora_b")
    }


def load_lora_state(layers: dict[str, Any], state: dict[str, Any]) -> None:
    import torch

    with torch.no_grad():
        for name, layer in layers.items():
            layer.lora_a.copy_(state[f"{name}.lora_a"])
            layer.lora_b.copy_(state[f"{name}.lora_b"])


def _permute_rows(rows: np.ndarray, n_head: int) -> np.ndarray:
    """The q/k row order of llama.cpp's GGUF conversion (interleaved → halves per head)."""
    shape = rows.shape
    return (
        rows.reshape(n_head, 2, shape[0] // n_head // 2, *shape[1:]).swapaxes(1, 2).reshape(shape)
    )


def write_adapter(
    layers: dict[str, Any],
    path: Path,
    *,
    architecture: str,
    alpha: float,
    n_heads: int,
    n_kv_heads: int,
    base_id: str,
    base_sha256: str,
    name: str,
) -> None:
    """Write the GGUF LoRA adapter llama.cpp loads (``general.type = adapter``)."""
    with atomic_writer(path, architecture) as writer:
        writer.add_type("adapter")
        writer.add_name(name)
        writer.add_string("adapter.type", "lora")
        writer.add_float32("adapter.lora.alpha", float(alpha))
        writer.add_string(BASE_ID_KEY, base_id)
        writer.add_string(BASE_SHA256_KEY, base_sha256)
        for module_name, layer in sorted(layers.items()):
            tensor = gguf_tensor_name(module_name)
            if tensor is None:
                continue
            a = layer.lora_a.detach().float().numpy()
            b = layer.lora_b.detach().float().numpy()
            if architecture == "llama" and module_name.endswith("q_proj"):
                b = _permute_rows(b, n_heads)
            elif architecture == "llama" and module_name.endswith("k_proj"):
                b = _permute_rows(b, n_kv_heads)
            stem = tensor.removesuffix(".weight")
            writer.add_tensor(f"{stem}.weight.lora_a", np.ascontiguousarray(a))
            writer.add_tensor(f"{stem}.weight.lora_b", np.ascontiguousarray(b))
