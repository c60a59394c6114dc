"""Quantized models record their source; re-encoding already-quantized weights is flagged;
Qwen3 layouts quantize."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

from terminus.quantize.lineage import dominant_type, lineage, precision_warning
from terminus.quantize.rules import scheme
from terminus.quantize.writer import quantize_file


def _tiny(path: Path, arch: str) -> Path:
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_uint32(f"{arch}.block_count", 1)
    rng = np.random.default_rng(0)
    writer.add_tensor("blk.0.attn_q.weight", rng.standard_normal((8, 64)).astype(np.float32))
    writer.add_tensor("blk.0.attn_q_norm.weight", np.ones(64, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_qwen3_quantizes_with_norms_kept_f32(tmp_path: Path) -> None:
    source = _tiny(tmp_path / "q3.gguf", "qwen3")
    chosen = quantize_file(source, tmp_path / "q3-q8.gguf", scheme("Q8_0"))
    assert chosen == {"blk.0.attn_q.weight": "Q8_0", "blk.0.attn_q_norm.weight": "F32"}
    reader = gguf.GGUFReader(str(tmp_path / "q3-q8.gguf"))
    assert reader.fields["general.architecture"].contents() == "qwen3"
    assert dominant_type(tmp_path / "q3-q8.gguf") == "Q8_0"


def test_lineage_names_the_source_and_warns_when_it_was_coarser(tmp_path: Path) -> None:
    f32 = _tiny(tmp_path / "f32.gguf", "llama")
    q4 = tmp_path / "q4.gguf"
    quantize_file(f32, q4, scheme("Q4_0"))
    clean = lineage(f32, "a" * 64, "base", None)
    assert clean["source_type"] == "F32" and clean["source_sha256"] == "a" * 64
    assert precision_warning(clean, "Q8_0") is None

    from_q4 = lineage(q4, "b" * 64, "base-q4", None)
    assert from_q4["source_type"] == from_q4["origin_type"] == "Q4_0"
    warning = precision_warning(from_q4, "Q8_0")
    assert warning is not None and "already Q4_0" in warning
    assert precision_warning(from_q4, "Q4_K") is None  # 4.5 bits either way

    # An F32 dequantized from Q4_1 carries its origin: quantizing it to Q8_0 still warns.
    upstream = {"origin_type": "Q4_1", "origin_bits": 5.0}
    via = lineage(f32, "c" * 64, "smollm2-f32", upstream)
    assert via["source_type"] == "F32" and via["origin_type"] == "Q4_1"
    warning = precision_warning(via, "Q8_0")
    assert warning is not None and "via F32 f32.gguf" in warning
