"""Reading GGUF tensors as float32 and writing new GGUF files (with the ``gguf`` package).

Shared by quantization (re-encode every tensor) and fine-tuning (adapters).
Files are written to a temporary name next to the target and renamed only when
complete, so a killed run never leaves a half-written GGUF under the final name.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from terminus.errors import EngineUnavailableError

# Hugging Face module names (llama / qwen2) → GGUF tensor names, per block.
HF_TO_GGUF: dict[str, str] = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}


def gguf_tensor_name(hf_module: str) -> str | None:
    """``model.layers.3.self_attn.q_proj`` → ``blk.3.attn_q.weight`` (None if unmapped)."""
    if hf_module == "lm_head":
        return "output.weight"
    parts = hf_module.split(".")
    if len(parts) < 5 or parts[:2] != ["model", "layers"]:
        return None
    short = HF_TO_GGUF.get(".".join(parts[3:]))
    return f"blk.{parts[2]}.{short}.weight" if short else None


def gguf_module() -> Any:
    try:
        import gguf
    except ImportError as exc:
        raise EngineUnavailableError(
            "the gguf package is needed here; pip install 'terminus-sdk[train]'"
        ) from exc
    return gguf


def open_reader(path: Path) -> Any:
    return gguf_module().GGUFReader(str(path))


def tensor_f32(tensor: Any) -> np.ndarray:
    """A reader tensor as float32 in numpy order (rows, cols)."""
    gguf = gguf_module()
    kind = gguf.GGMLQuantizationType(int(tensor.tensor_type))
    shape = tuple(int(d) for d in reversed(tensor.shape))
    if kind == gguf.GGMLQuantizationType.F32:
        return np.asarray(tensor.data, dtype=np.float32).reshape(shape)
    if kind == gguf.GGMLQuantizationType.F16:
        return np.asarray(tensor.data, dtype=np.float16).astype(np.float32).reshape(shape)
    return gguf.quants.dequantize(tensor.data, kind).astype(np.float32).reshape(shape)


def string_field(reader: Any, key: str) -> str | None:
    field = reader.fields.get(key)
    return None if field is None else str(field.contents())


def int_field(reader: Any, key: str) -> int | None:
    field = reader.fields.get(key)
    return None if field is None else int(field.contents())


def copy_metadata(reader: Any, writer: Any, *, skip: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    """Every key/value of ``reader`` onto ``writer`` except GGUF's own and ``skip``."""
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture" or key in skip:
            continue
        sub_type = field.types[-1] if len(field.types) > 1 else None
        writer.add_key_value(key, field.contents(), field.types[0], sub_type=sub_type)


def staging_root(home: Path) -> Path:
    """Where new model files are written before the cache takes them (same file system)."""
    root = home / "tmp"
    root.mkdir(parents=True, exist_ok=True)
    return root


@contextlib.contextmanager
def atomic_writer(target: Path, arch: str) -> Iterator[Any]:
    """A ``GGUFWriter`` on a temporary file that becomes ``target`` only if the block succeeds."""
    gguf = gguf_module()
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.{os.getpid()}.partial")
    writer = gguf.GGUFWriter(str(temp), arch)
    try:
        yield writer
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(Exception):
            writer.close()
        temp.unlink(missing_ok=True)
        raise
