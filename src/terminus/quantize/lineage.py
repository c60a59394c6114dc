"""Where a quantized file came from, and whether the quantization means anything.

Re-encoding 4-bit weights as Q8_0 measures nothing about Q8_0: the information lost at
4 bits is gone. The lineage names the source file (sha256, dominant tensor type) and
the lowest precision anywhere upstream, so a report can say so and a user is warned.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from terminus.models.gguf_io import open_reader

#: Bits per weight of ggml's types (block scales included), as llama.cpp documents them.
BITS_PER_WEIGHT: dict[str, float] = {
    "F32": 32.0,
    "F16": 16.0,
    "BF16": 16.0,
    "Q8_0": 8.5,
    "Q6_K": 6.5625,
    "Q5_1": 6.0,
    "Q5_0": 5.5,
    "Q5_K": 5.5,
    "Q4_1": 5.0,
    "Q4_0": 4.5,
    "Q4_K": 4.5,
    "Q3_K": 3.4375,
    "Q2_K": 2.625,
}


def dominant_type(path: Path) -> str:
    """The ggml type holding most of the file's matrix weights (``Q4_1``, ``F16``…)."""
    reader = open_reader(path)
    counts: Counter[str] = Counter()
    for tensor in reader.tensors:
        if len(tensor.shape) >= 2:
            counts[tensor.tensor_type.name] += int(tensor.n_elements)
    return counts.most_common(1)[0][0] if counts else "F32"


def lineage(
    source: Path, source_sha256: str | None, base_id: str, base_lineage: dict[str, Any] | None
) -> dict[str, Any]:
    """The record stored in a quantized model's card."""
    kind = dominant_type(source)
    bits = BITS_PER_WEIGHT.get(kind, 32.0)
    origin_type, origin_bits = kind, bits
    upstream = (base_lineage or {}).get("origin_bits")
    if upstream is not None and float(upstream) < bits:  # e.g. an F32 dequantized from Q4_1
        origin_type = str((base_lineage or {})["origin_type"])
        origin_bits = float(upstream)
    return {
        "source_model": base_id,
        "source_file": source.name,
        "source_sha256": source_sha256,
        "source_type": kind,
        "origin_type": origin_type,
        "origin_bits": origin_bits,
    }


def precision_warning(record: dict[str, Any], target_default: str) -> str | None:
    """A sentence when the weights were already below the target's precision upstream."""
    target_bits = BITS_PER_WEIGHT.get(target_default, 32.0)
    if record["origin_bits"] >= target_bits:
        return None
    via = (
        f" (via {record['source_type']} {record['source_file']})"
        if record["origin_type"] != record["source_type"]
        else ""
    )
    return (
        f"the source weights were already {record['origin_type']}{via}, below the target "
        f"{target_default}: the result cannot be more precise than {record['origin_type']}, "
        "and comparing it with other quantizations measures re-encoding, not quantization"
    )
