"""A small, dependency-free GGUF header reader (GGUF v2/v3, little-endian).

Reads the metadata and tensor infos through ``mmap`` without touching the tensor
data. Every length and count is checked against the bytes left in the file before
anything is allocated or looped over, so a corrupt header fails fast with
TruncatedModelError or NotGGUFError. Also estimates the memory a llama.cpp load needs.
"""

from __future__ import annotations

import functools
import math
import mmap
import os
import struct
from dataclasses import dataclass
from typing import Any

from terminus.errors import NotGGUFError, TruncatedModelError

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32

#: Arrays longer than this are stored in ``metadata`` as their length only
#: (tokenizer vocabularies, merges, scores...), keeping reads fast and small.
MAX_ARRAY_ITEMS = 64
#: Numeric arrays are kept up to this length so per-layer values
#: (e.g. ``{arch}.attention.head_count_kv`` of an 80-layer model) survive.
MAX_NUMERIC_ARRAY_ITEMS = 1024
#: Sanity limits for a corrupt header that still points inside the file.
MAX_STRING_BYTES = 64 * 1024 * 1024
MAX_ARRAY_DEPTH = 8
MAX_TENSOR_DIMS = 8

#: Memory llama.cpp needs on top of weights and KV cache (compute graph buffers,
#: scratch, runtime): a fixed base plus a small share of the weights. Deliberately
#: modest; it is a rough budget, not a measurement.
COMPUTE_OVERHEAD_BASE_BYTES = 64 * 1024 * 1024
COMPUTE_OVERHEAD_WEIGHTS_FRACTION = 0.02

# GGUF metadata value types -> struct format of the fixed-size ones.
_T_STRING = 8
_U64 = struct.Struct("<Q")
_T_ARRAY = 9
_FIXED_FORMATS: dict[int, str] = {
    # uint8..int32, float32, bool, uint64, int64, float64
    0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d",
}  # fmt: skip
_FIXED_SIZES: dict[int, int] = {t: struct.calcsize("<" + f) for t, f in _FIXED_FORMATS.items()}

#: ggml type id -> (block size in elements, bytes per block).
# fmt: off
GGML_TYPE_SIZES: dict[int, tuple[int, int]] = {
    0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20),  # F32 F16 Q4_0 Q4_1
    6: (32, 22), 7: (32, 24), 8: (32, 34), 9: (32, 36),  # Q5_0 Q5_1 Q8_0 Q8_1
    10: (256, 84), 11: (256, 110), 12: (256, 144),  # Q2_K Q3_K Q4_K
    13: (256, 176), 14: (256, 210), 15: (256, 292),  # Q5_K Q6_K Q8_K
    16: (256, 66), 17: (256, 74), 18: (256, 98),  # IQ2_XXS IQ2_XS IQ3_XXS
    19: (256, 50), 20: (32, 18), 21: (256, 110),  # IQ1_S IQ4_NL IQ3_S
    22: (256, 82), 23: (256, 136),  # IQ2_S IQ4_XS
    24: (1, 1), 25: (1, 2), 26: (1, 4), 27: (1, 8), 28: (1, 8),  # I8 I16 I32 I64 F64
    29: (256, 56), 30: (1, 2),  # IQ1_M BF16
    34: (256, 54), 35: (256, 66), 39: (32, 17),  # TQ1_0 TQ2_0 MXFP4
}
# fmt: on


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    ggml_type: int
    offset: int  # relative to GGUFHeader.data_offset

    @property
    def nbytes(self) -> int | None:
        """Size of the tensor data, or None for a ggml type we don't know."""
        sizes = GGML_TYPE_SIZES.get(self.ggml_type)
        if sizes is None:
            return None
        block, type_size = sizes
        if not self.shape:
            return type_size
        return -(-self.shape[0] // block) * type_size * math.prod(self.shape[1:])


@dataclass(frozen=True)
class GGUFHeader:
    version: int
    metadata: dict[str, Any]
    tensors: list[TensorInfo]
    data_offset: int
    file_size: int

    @property
    def tensor_data_end(self) -> int:
        """Where the tensor data must end (tensors of unknown type are skipped)."""
        ends = [t.offset + n for t in self.tensors if (n := t.nbytes) is not None]
        return self.data_offset + max(ends, default=0)

    @property
    def architecture(self) -> str | None:
        value = self.metadata.get("general.architecture")
        return value if isinstance(value, str) else None

    @property
    def name(self) -> str | None:
        value = self.metadata.get("general.name")
        return value if isinstance(value, str) else None

    @property
    def chat_template(self) -> str | None:
        value = self.metadata.get("tokenizer.chat_template")
        return value if isinstance(value, str) else None

    def _arch_int(self, key: str) -> int | None:
        """``{arch}.{key}`` as an int; per-layer arrays give their maximum."""
        if self.architecture is None:
            return None
        value = self.metadata.get(f"{self.architecture}.{key}")
        if isinstance(value, list):
            value = max((v for v in value if isinstance(v, int)), default=None)
        if isinstance(value, bool) or not isinstance(value, int):
            return None
        return value

    @property
    def context_length(self) -> int | None:
        return self._arch_int("context_length")

    @property
    def block_count(self) -> int | None:
        return self._arch_int("block_count")

    @property
    def embedding_length(self) -> int | None:
        return self._arch_int("embedding_length")

    @property
    def head_count(self) -> int | None:
        return self._arch_int("attention.head_count")

    @property
    def head_count_kv(self) -> int | None:
        """KV heads (max over layers); llama.cpp defaults it to ``head_count``."""
        value = self._arch_int("attention.head_count_kv")
        return value if value is not None else self.head_count

    def _head_dim(self, key: str) -> int | None:
        value = self._arch_int(key)
        if value is not None:
            return value
        emb, heads = self.embedding_length, self.head_count
        return emb // heads if emb and heads else None

    @property
    def key_length(self) -> int | None:
        return self._head_dim("attention.key_length")

    @property
    def value_length(self) -> int | None:
        return self._head_dim("attention.value_length")


@dataclass(frozen=True)
class MemoryEstimate:
    weights_bytes: int
    kv_cache_bytes: int
    compute_bytes: int
    total_bytes: int
    notes: str = ""


class _Reader:
    """Bounds-checked little-endian reads from a buffer."""

    def __init__(self, buf: mmap.mmap | bytes, path: str) -> None:
        self.buf = buf
        self.size = len(buf)
        self.pos = 0
        self.path = path

    def _need(self, n: int, what: str) -> None:
        if n < 0 or self.pos + n > self.size:
            raise TruncatedModelError(
                f"{self.path} is truncated: the GGUF header needs {n} bytes for {what} "
                f"at offset {self.pos}, but the file has {self.size} bytes"
            )

    def corrupt(self, detail: str) -> NotGGUFError:
        return NotGGUFError(f"{self.path} is not a valid GGUF file: {detail} (offset {self.pos})")

    def fixed(self, vtype: int, what: str) -> Any:
        fmt, n = _FIXED_FORMATS[vtype], _FIXED_SIZES[vtype]
        self._need(n, what)
        (value,) = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += n
        return value

    def u32(self, what: str) -> int:
        return int(self.fixed(4, what))

    def u64(self, what: str) -> int:
        return int(self.fixed(10, what))

    def count(self, min_item_bytes: int, what: str) -> int:
        """A uint64 count whose items (>= min_item_bytes each) must fit in the file."""
        n = self.u64(what)
        self._need(n * min_item_bytes, f"{n} x {what}")
        return n

    def string(self, what: str, keep: bool = True) -> str:
        n = self.u64(f"length of {what}")
        self._need(n, what)
        if n > MAX_STRING_BYTES:
            raise self.corrupt(f"{what} claims {n} bytes")
        start = self.pos
        self.pos += n
        return bytes(self.buf[start : self.pos]).decode("utf-8", "replace") if keep else ""

    def skip_strings(self, n: int, what: str) -> None:
        """Step over ``n`` strings without decoding them (tokenizer vocabularies are large)."""
        buf, pos, size, unpack = self.buf, self.pos, self.size, _U64.unpack_from
        for _ in range(n):
            if pos + 8 > size:
                break
            pos += 8 + unpack(buf, pos)[0]
        else:
            if pos <= size:
                self.pos = pos
                return
        self._need(pos + 8 - self.pos, f"items of {what}")  # always raises: past the end

    def value(self, vtype: int, what: str, depth: int = 0) -> Any:
        if vtype in _FIXED_FORMATS:
            return self.fixed(vtype, what)
        if vtype == _T_STRING:
            return self.string(what)
        if vtype == _T_ARRAY:
            return self.array(what, depth + 1)
        raise self.corrupt(f"unknown value type {vtype} for {what}")

    def array(self, what: str, depth: int) -> list[Any] | int:
        if depth > MAX_ARRAY_DEPTH:
            raise self.corrupt(f"arrays nested deeper than {MAX_ARRAY_DEPTH} in {what}")
        etype = self.u32(f"element type of {what}")
        if etype in _FIXED_FORMATS:
            size = _FIXED_SIZES[etype]
            n = self.count(size, f"items of {what}")
            if n > MAX_NUMERIC_ARRAY_ITEMS:
                self.pos += n * size  # bounds already checked by count()
                return n
            items = list(struct.unpack_from(f"<{n}{_FIXED_FORMATS[etype]}", self.buf, self.pos))
            self.pos += n * size
            return items
        if etype == _T_STRING:
            n = self.count(8, f"items of {what}")
            if n > MAX_ARRAY_ITEMS:
                self.skip_strings(n, what)
                return n
            return [self.string(f"item of {what}") for _ in range(n)]
        if etype == _T_ARRAY:
            n = self.count(12, f"items of {what}")
            if n > MAX_ARRAY_ITEMS:
                for _ in range(n):
                    self.array(f"item of {what}", depth + 1)
                return n
            return [self.array(f"item of {what}", depth + 1) for _ in range(n)]
        raise self.corrupt(f"unknown array element type {etype} for {what}")


def _parse(r: _Reader) -> GGUFHeader:
    if bytes(r.buf[:4]) != GGUF_MAGIC:
        raise NotGGUFError(f"{r.path} is not a GGUF file (it does not start with b'GGUF')")
    r.pos = 4
    version = r.u32("the version")
    if version not in SUPPORTED_VERSIONS:
        hint = " (big-endian files are not supported)" if version & 0xFFFF == 0 else ""
        raise r.corrupt(f"unsupported GGUF version {version}{hint}")
    n_tensors = r.count(24, "tensor infos")  # name len + n_dims + type + offset
    n_kv = r.count(13, "metadata entries")  # key len + type + >= 1 byte of value

    metadata: dict[str, Any] = {}
    for _ in range(n_kv):
        key = r.string("a metadata key")
        vtype = r.u32(f"the type of {key!r}")
        metadata[key] = r.value(vtype, repr(key))

    tensors: list[TensorInfo] = []
    for _ in range(n_tensors):
        name = r.string("a tensor name")
        n_dims = r.u32(f"the rank of tensor {name!r}")
        if n_dims > MAX_TENSOR_DIMS:
            raise r.corrupt(f"tensor {name!r} claims {n_dims} dimensions")
        shape = tuple(r.u64(f"the shape of tensor {name!r}") for _ in range(n_dims))
        ggml_type = r.u32(f"the type of tensor {name!r}")
        offset = r.u64(f"the offset of tensor {name!r}")
        tensors.append(TensorInfo(name, shape, ggml_type, offset))

    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if isinstance(alignment, bool) or not isinstance(alignment, int) or alignment <= 0:
        raise r.corrupt(f"general.alignment is {alignment!r}")
    if alignment & (alignment - 1):
        raise r.corrupt(f"general.alignment {alignment} is not a power of two")
    data_offset = -(-r.pos // alignment) * alignment
    return GGUFHeader(version, metadata, tensors, data_offset, r.size)


def read_gguf_header(path: str | os.PathLike[str]) -> GGUFHeader:
    """Parse the GGUF header of ``path`` (memoized per file identity: size, mtime, inode)."""
    st = os.stat(path)
    return _read_cached(
        os.path.realpath(path), st.st_size, st.st_mtime_ns, st.st_ino, os.fspath(path)
    )


@functools.lru_cache(maxsize=32)
def _read_cached(real: str, size: int, mtime_ns: int, inode: int, shown: str) -> GGUFHeader:
    return _read_uncached(shown)


def _read_uncached(path: str | os.PathLike[str]) -> GGUFHeader:
    """Parse the GGUF header of ``path`` without reading the tensor data.

    Raises NotGGUFError if the file lacks the magic (an empty file included),
    has an unsupported version or an impossible header, and TruncatedModelError
    if the header runs past the end of the file.
    """
    shown = os.fspath(path)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size < len(GGUF_MAGIC):
            return _parse(_Reader(f.read(), shown))  # too small to mmap usefully
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return _parse(_Reader(buf, shown))


def validate_gguf(path: str | os.PathLike[str]) -> GGUFHeader:
    """Read the header and check that the file holds all the tensor data it describes."""
    header = read_gguf_header(path)
    end = header.tensor_data_end
    if header.file_size < end:
        missing = end - header.file_size
        raise TruncatedModelError(
            f"{os.fspath(path)} is truncated: its tensor data ends at byte {end} but the file "
            f"has {header.file_size} bytes ({missing} bytes missing)",
            hint="delete it and download it again",
        )
    return header


def estimate_load_bytes(
    header: GGUFHeader, n_ctx_total: int, kv_bytes_per_elem: int = 2
) -> MemoryEstimate:
    """Rough memory needed to load the model with llama.cpp for ``n_ctx_total`` tokens.

    The KV cache is ``block_count * n_ctx_total * head_count_kv * (key_length +
    value_length) * kv_bytes_per_elem`` (K and V for every layer); it is 0, with a
    note, when the attention metadata is missing.
    """
    weights = max(0, header.file_size - header.data_offset)
    layers, kv_heads = header.block_count, header.head_count_kv
    k_len, v_len = header.key_length, header.value_length
    notes = ""
    if layers and kv_heads and k_len and v_len:
        kv = layers * n_ctx_total * kv_heads * (k_len + v_len) * kv_bytes_per_elem
    else:
        kv = 0
        notes = "attention metadata missing; KV cache not estimated"
    compute = COMPUTE_OVERHEAD_BASE_BYTES + int(weights * COMPUTE_OVERHEAD_WEIGHTS_FRACTION)
    return MemoryEstimate(weights, kv, compute, weights + kv + compute, notes)
