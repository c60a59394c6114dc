"""Re-encode a GGUF model into another type, tensor by tensor, with ggml's own quantizers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from terminus.engines.llamacpp_native import quantize_rows
from terminus.errors import UnsupportedArchitectureError
from terminus.models.gguf_io import (
    atomic_writer,
    copy_metadata,
    gguf_module,
    int_field,
    open_reader,
    string_field,
    tensor_f32,
)
from terminus.models.progress import NullProgress, Progress
from terminus.quantize.rules import Scheme, tensor_type

#: Dense decoder layouts whose tensors llama.cpp's type rules cover; Qwen3 adds only 1-D
#: q/k norms (kept F32), so the same rules apply.
QUANTIZABLE_ARCHITECTURES = ("llama", "qwen2", "qwen3")


def quantize_file(
    source: Path,
    target: Path,
    plan: Scheme,
    *,
    imatrix: dict[str, np.ndarray] | None = None,
    on_tensor: Callable[[str, str], None] | None = None,
    progress: Progress | None = None,
) -> dict[str, str]:
    """Write ``source`` re-encoded as ``plan`` to ``target``; returns tensor → ggml type.

    ``progress`` advances by each tensor's bytes in the source file."""
    gguf = gguf_module()
    reader = open_reader(source)
    arch = string_field(reader, "general.architecture") or "?"
    if arch not in QUANTIZABLE_ARCHITECTURES:
        raise UnsupportedArchitectureError(
            f"quantization supports {', '.join(QUANTIZABLE_ARCHITECTURES)}; {source.name} is {arch}"
        )
    n_layers = int_field(reader, f"{arch}.block_count") or 0
    names = {t.name for t in reader.tensors}
    has_output = "output.weight" in names
    chosen: dict[str, str] = {}
    progress = progress or NullProgress()
    progress.start(f"quantizing to {plan.name}", sum(int(t.n_bytes) for t in reader.tensors))
    with atomic_writer(target, arch) as writer:
        copy_metadata(reader, writer, skip={"general.file_type", "general.quantization_version"})
        writer.add_file_type(plan.file_type)
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        for tensor in reader.tensors:
            values = tensor_f32(tensor)
            kind = tensor_type(plan, tensor.name, values.shape, n_layers, has_output=has_output)
            chosen[tensor.name] = kind
            if on_tensor is not None:
                on_tensor(tensor.name, kind)
            progress.advance(int(tensor.n_bytes))
            if kind == "F32":
                writer.add_tensor(tensor.name, values)
                continue
            if kind == "F16":
                writer.add_tensor(tensor.name, values.astype(np.float16))
                continue
            rows = values.reshape(-1, values.shape[-1])
            importance = None if imatrix is None else imatrix.get(tensor.name)
            if importance is not None and importance.shape[-1] != rows.shape[1]:
                importance = None
            data = quantize_rows(rows, kind, importance)
            raw = np.frombuffer(data, dtype=np.uint8).reshape(rows.shape[0], -1)
            writer.add_tensor(
                tensor.name,
                raw.reshape(*values.shape[:-1], raw.shape[-1]),
                raw_dtype=gguf.GGMLQuantizationType[kind],
            )
    progress.finish()
    return chosen
