"""A cheap look at a GGUF's tensor data: GGUF itself carries no checksum for it.

A file with a valid header and garbage (or zeroed) tensor data loads in llama.cpp and
generates nonsense. This pass reads two small samples (start and middle, 4 KiB each)
of every tensor — a few MB in all, milliseconds — and checks what a real model never
has:

- NaN or infinite values in float tensors (F32, F16, BF16) and in the float16 block
  scales that lead each quantized block (Q4_0 … Q8_0, the K-quants). Random bytes read
  as float16 are NaN/Inf one time in 32, so a garbage tensor shows some within a few
  dozen blocks;
- tensor data made of one repeated byte (all zeros, say) in most of the tensors.

It is a sanity check, not a proof: only the sha256 a card pins proves the bytes are the
published ones.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

from terminus.errors import CorruptTensorDataError
from terminus.models.gguf import GGML_TYPE_SIZES, GGUFHeader

SAMPLE_BYTES = 4096

_F32, _F16, _BF16 = 0, 1, 30
#: Quantized ggml types -> offsets of the float16 scales inside each block.
_SCALE_OFFSETS: dict[int, tuple[int, ...]] = {
    2: (0,),  # Q4_0: d, qs[16]
    3: (0, 2),  # Q4_1: d, m, qs[16]
    6: (0,),  # Q5_0: d, qh[4], qs[16]
    7: (0, 2),  # Q5_1: d, m, qh[4], qs[16]
    8: (0,),  # Q8_0: d, qs[32]
    10: (80, 82),  # Q2_K: scales[16], qs[64], d, dmin
    11: (108,),  # Q3_K: hmask[32], qs[64], scales[12], d
    12: (0, 2),  # Q4_K: d, dmin, scales[12], qs[128]
    13: (0, 2),  # Q5_K: d, dmin, scales[12], qh[32], qs[128]
    14: (208,),  # Q6_K: ql[128], qh[64], scales[16], d
}


def check_tensor_data(path: str | os.PathLike[str], header: GGUFHeader) -> None:
    """Raise ``CorruptTensorDataError`` when sampled tensor data cannot be a model's."""
    constant = 0
    sampled = 0
    with Path(path).open("rb") as fh:
        for tensor in header.tensors:
            size = tensor.nbytes
            if size is None or size == 0:
                continue
            start = header.data_offset + tensor.offset
            block = GGML_TYPE_SIZES[tensor.ggml_type][1]
            samples = [_read(fh, start, min(size, SAMPLE_BYTES), block)]
            if size > 2 * SAMPLE_BYTES:
                middle = (size // 2) // block * block
                samples.append(_read(fh, start + middle, SAMPLE_BYTES, block))
            data = b"".join(samples)
            sampled += 1
            if data.count(data[:1]) == len(data):
                constant += 1
            bad = _non_finite(data, tensor.ggml_type)
            if bad:
                raise CorruptTensorDataError(
                    f"{os.fspath(path)}: tensor {tensor.name!r} holds {bad} NaN or infinite "
                    "values where a model has finite numbers: its data is corrupt",
                    hint="GGUF has no checksum for tensor data; get the file again",
                )
    if sampled >= 4 and constant * 2 > sampled:
        raise CorruptTensorDataError(
            f"{os.fspath(path)}: {constant} of {sampled} tensors hold one repeated byte "
            "(zeroed or blank data), not trained weights",
            hint="GGUF has no checksum for tensor data; get the file again",
        )


def _read(fh: BinaryIO, offset: int, size: int, block: int) -> bytes:
    size = max(block, size // block * block)
    fh.seek(offset)
    data = fh.read(size)
    return data[: len(data) // block * block]


def _non_finite(data: bytes, ggml_type: int) -> int:
    import numpy as np  # here, not at the top: a model whose check is cached never needs it

    if ggml_type == _F32:
        values = np.frombuffer(data[: len(data) // 4 * 4], dtype="<f4")
    elif ggml_type == _F16:
        values = np.frombuffer(data[: len(data) // 2 * 2], dtype="<f2")
    elif ggml_type == _BF16:
        raw = np.frombuffer(data[: len(data) // 2 * 2], dtype="<u2").astype(np.uint32) << 16
        values = raw.view(np.float32)
    elif ggml_type in _SCALE_OFFSETS:
        block = GGML_TYPE_SIZES[ggml_type][1]
        blocks = np.frombuffer(data, dtype=np.uint8).reshape(-1, block)
        scales = [
            blocks[:, o : o + 2].copy().view("<f2").ravel() for o in _SCALE_OFFSETS[ggml_type]
        ]
        values = np.concatenate(scales) if scales else np.empty(0, dtype="<f2")
    else:
        return 0
    return int(np.count_nonzero(~np.isfinite(values)))
