"""Importance matrices: how strongly each input column of each matrix is used.

For every linear layer, the sum of squared input activations per input column
over calibration text (llama.cpp's ``in_sum2``) and the number of tokens seen
(``counts``). Measured on the float32 PyTorch model dequantized from the source
GGUF; the statistics are of the inputs, so the GGUF q/k row permutation does not
touch them. Saved in llama.cpp's GGUF imatrix format (``general.type =
imatrix``, tensors ``<name>.in_sum2`` and ``<name>.counts``), which
``llama-quantize --imatrix`` reads too.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from terminus.engines.torch_causal import load_torch_model
from terminus.errors import InvalidModelFileError, InvalidParameterError
from terminus.models.gguf_io import atomic_writer, gguf_module, gguf_tensor_name, open_reader

DEFAULT_CHUNK_TOKENS = 256


def compute_imatrix(
    model_path: Path,
    text: str,
    *,
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
    max_chunks: int | None = None,
    threads: int | None = None,
    on_chunk: Callable[[int, int], None] | None = None,
) -> dict[str, np.ndarray]:
    """``{gguf tensor name: mean squared input activation per column}`` from ``text``."""
    loaded = load_torch_model(model_path, threads=threads)
    import torch

    model = loaded.model
    ids = loaded.tokenizer(text, return_tensors="pt")["input_ids"][0]
    n_chunks = len(ids) // chunk_tokens
    if max_chunks is not None:
        n_chunks = min(n_chunks, max_chunks)
    if n_chunks < 1:
        raise InvalidParameterError(
            f"calibration text has {len(ids)} tokens; at least {chunk_tokens} are needed"
        )
    tied = bool(getattr(model.config, "tie_word_embeddings", False))
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    hooks = []

    def hook_for(name: str) -> Callable[..., None]:
        def record(module: Any, inputs: tuple[Any, ...]) -> None:
            x = inputs[0].detach().reshape(-1, inputs[0].shape[-1]).double()
            sums[name] = sums.get(name, 0) + (x * x).sum(0)
            counts[name] = counts.get(name, 0) + x.shape[0]

        return record

    for module_name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear):
            continue
        target = gguf_tensor_name(module_name)
        if target == "output.weight" and tied:
            target = "token_embd.weight"
        if target is not None:
            hooks.append(module.register_forward_pre_hook(hook_for(target)))
    try:
        with torch.no_grad():
            for i in range(n_chunks):
                chunk = ids[i * chunk_tokens : (i + 1) * chunk_tokens].unsqueeze(0)
                model(chunk)
                if on_chunk is not None:
                    on_chunk(i + 1, n_chunks)
    finally:
        for handle in hooks:
            handle.remove()
    return {name: (sums[name] / counts[name]).float().numpy() for name in sums}


def save_imatrix(
    matrix: dict[str, np.ndarray], path: Path, *, dataset: str = "", chunks: int = 0
) -> None:
    """Write llama.cpp's GGUF imatrix file (counts of 1: the sums are already means)."""
    with atomic_writer(path, "imatrix") as writer:
        writer.add_type("imatrix")
        writer.add_array("imatrix.datasets", [dataset or "calibration"])
        writer.add_uint32("imatrix.chunk_count", chunks)
        writer.add_uint32("imatrix.chunk_size", DEFAULT_CHUNK_TOKENS)
        for name in sorted(matrix):
            writer.add_tensor(f"{name}.in_sum2", matrix[name].astype(np.float32)[None, :])
            writer.add_tensor(f"{name}.counts", np.ones((1, 1), dtype=np.float32))


def load_imatrix(path: Path) -> dict[str, np.ndarray]:
    """Read a GGUF imatrix back as mean squared activations per column."""
    gguf_module()
    try:
        reader = open_reader(path)
    except (ValueError, OSError) as exc:
        raise InvalidModelFileError(f"{path} is not a GGUF imatrix file: {exc}") from exc
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, float] = {}
    for tensor in reader.tensors:
        data = np.asarray(tensor.data, dtype=np.float32).reshape(-1)
        if tensor.name.endswith(".in_sum2"):
            sums[tensor.name.removesuffix(".in_sum2")] = data
        elif tensor.name.endswith(".counts"):
            counts[tensor.name.removesuffix(".counts")] = float(data[0])
    if not sums:
        raise InvalidModelFileError(f"{path} holds no importance matrix tensors")
    return {name: values / max(counts.get(name, 1.0), 1.0) for name, values in sums.items()}
