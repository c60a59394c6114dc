"""llama.cpp's C API from the xllamacpp shared library, through ctypes.

xllamacpp's Python API is the server; two things need the library underneath:
full next-token logits at every position of a text (perplexity and KL between a
model and its quantization must come from llama.cpp itself), and ggml's
quantizers (``ggml_quantize_chunk``, with an optional importance matrix).

Structs passed by value are declared as opaque blobs: only the leading fields
of ``llama_context_params`` are written, after checking that the defaults sit
where this build puts them, so a different build fails loudly instead of
writing to the wrong field.
"""

from __future__ import annotations

import ctypes as C
import importlib.util
import threading
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from terminus.errors import EngineError, EngineUnavailableError

# ggml_type ids (ggml.h); stable across llama.cpp releases.
GGML_TYPES: dict[str, int] = {
    "F32": 0,
    "F16": 1,
    "Q4_0": 2,
    "Q4_1": 3,
    "Q5_0": 6,
    "Q5_1": 7,
    "Q8_0": 8,
    "Q2_K": 10,
    "Q3_K": 11,
    "Q4_K": 12,
    "Q5_K": 13,
    "Q6_K": 14,
    "BF16": 30,
}


class _Blob(C.Structure):
    """Room for a struct returned or passed by value (larger than any llama.cpp params struct)."""

    _fields_ = [("b", C.c_uint8 * 1024)]


class _Batch(C.Structure):
    _fields_ = [
        ("n_tokens", C.c_int32),
        ("token", C.POINTER(C.c_int32)),
        ("embd", C.c_void_p),
        ("pos", C.POINTER(C.c_int32)),
        ("n_seq_id", C.POINTER(C.c_int32)),
        ("seq_id", C.POINTER(C.POINTER(C.c_int32))),
        ("logits", C.POINTER(C.c_int8)),
    ]


_LOG_CB = C.CFUNCTYPE(None, C.c_int, C.c_char_p, C.c_void_p)
_quiet = _LOG_CB(lambda level, text, data: None)
_lock = threading.Lock()


@cache
def library() -> Any:
    spec = importlib.util.find_spec("xllamacpp")
    if spec is None or spec.origin is None:
        raise EngineUnavailableError("xllamacpp is not installed; pip install xllamacpp")
    found = sorted(Path(spec.origin).parent.glob("xllamacpp*.so"))
    if not found:
        raise EngineUnavailableError("the xllamacpp shared library was not found")
    lib = C.CDLL(str(found[0]))
    lib.ggml_quantize_chunk.restype = C.c_size_t
    lib.ggml_quantize_chunk.argtypes = [
        C.c_int,
        C.POINTER(C.c_float),
        C.c_void_p,
        C.c_int64,
        C.c_int64,
        C.c_int64,
        C.POINTER(C.c_float),
    ]
    lib.ggml_quantize_init.argtypes = [C.c_int]
    lib.ggml_quantize_init.restype = None
    lib.llama_backend_init.restype = None
    lib.llama_log_set.argtypes = [C.c_void_p, C.c_void_p]
    lib.llama_log_set.restype = None
    lib.llama_model_default_params.restype = _Blob
    lib.llama_context_default_params.restype = _Blob
    lib.llama_model_load_from_file.restype = C.c_void_p
    lib.llama_model_load_from_file.argtypes = [C.c_char_p, _Blob]
    lib.llama_init_from_model.restype = C.c_void_p
    lib.llama_init_from_model.argtypes = [C.c_void_p, _Blob]
    lib.llama_model_get_vocab.restype = C.c_void_p
    lib.llama_model_get_vocab.argtypes = [C.c_void_p]
    lib.llama_vocab_n_tokens.argtypes = [C.c_void_p]
    lib.llama_tokenize.argtypes = [
        C.c_void_p,
        C.c_char_p,
        C.c_int32,
        C.POINTER(C.c_int32),
        C.c_int32,
        C.c_bool,
        C.c_bool,
    ]
    lib.llama_batch_init.restype = _Batch
    lib.llama_batch_init.argtypes = [C.c_int32, C.c_int32, C.c_int32]
    lib.llama_batch_free.argtypes = [_Batch]
    lib.llama_batch_free.restype = None
    lib.llama_decode.argtypes = [C.c_void_p, _Batch]
    lib.llama_get_logits_ith.restype = C.POINTER(C.c_float)
    lib.llama_get_logits_ith.argtypes = [C.c_void_p, C.c_int32]
    lib.llama_memory_clear.argtypes = [C.c_void_p, C.c_bool]
    lib.llama_memory_clear.restype = None
    lib.llama_get_memory.argtypes = [C.c_void_p]
    lib.llama_get_memory.restype = C.c_void_p
    lib.llama_free.argtypes = [C.c_void_p]
    lib.llama_free.restype = None
    lib.llama_model_free.argtypes = [C.c_void_p]
    lib.llama_model_free.restype = None
    lib.llama_backend_init()
    lib.llama_log_set(C.cast(_quiet, C.c_void_p), None)
    return lib


def quantize_rows(rows: np.ndarray, type_name: str, importance: np.ndarray | None = None) -> bytes:
    """Quantize a 2-D float32 matrix row by row with ggml's own quantizer."""
    lib = library()
    ggml_type = GGML_TYPES[type_name]
    data = np.ascontiguousarray(rows, dtype=np.float32)
    n_rows, n_per_row = data.shape
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(ggml_type)]
    if n_per_row % block:
        raise EngineError(f"{type_name} needs rows that are a multiple of {block} values")
    out = np.empty(n_rows * (n_per_row // block) * type_size, dtype=np.uint8)
    weights = None
    if importance is not None:
        imp = np.ascontiguousarray(importance, dtype=np.float32)
        weights = imp.ctypes.data_as(C.POINTER(C.c_float))
    with _lock:  # ggml_quantize_init builds shared tables once
        lib.ggml_quantize_init(ggml_type)
    written = lib.ggml_quantize_chunk(
        ggml_type,
        data.ctypes.data_as(C.POINTER(C.c_float)),
        out.ctypes.data_as(C.c_void_p),
        0,
        n_rows,
        n_per_row,
        weights,
    )
    if written != out.nbytes:
        raise EngineError(f"ggml wrote {written} bytes for {type_name}, expected {out.nbytes}")
    return out.tobytes()


# llama_context_params, as uint32 words: n_ctx, n_batch, n_ubatch, n_seq_max,
# n_outputs_max, (unused here), (unused here), n_threads, n_threads_batch.
_EXPECTED_CONTEXT_DEFAULTS = {1: 2048, 2: 512, 3: 1, 7: 4, 8: 4}


class LogitsModel:
    """A GGUF loaded by llama.cpp for scoring: every position's full next-token logits."""

    def __init__(
        self, path: Path, *, context: int = 512, threads: int = 1, batch: int | None = None
    ) -> None:
        self._lib = lib = library()
        self.context = context
        self._model = lib.llama_model_load_from_file(
            str(path).encode(), lib.llama_model_default_params()
        )
        if not self._model:
            raise EngineError(f"llama.cpp could not load {path}")
        params = lib.llama_context_default_params()
        words = (C.c_uint32 * 9).from_buffer(params.b)
        if any(words[i] != v for i, v in _EXPECTED_CONTEXT_DEFAULTS.items()):
            lib.llama_model_free(self._model)
            raise EngineUnavailableError(
                "this xllamacpp build lays out llama_context_params differently; "
                "logit scoring is unavailable"
            )
        words[0] = words[1] = words[2] = words[4] = context
        if batch is not None:  # decode in calls of at most ``batch`` tokens (decode_chunk)
            words[1] = words[2] = min(batch, context)
        words[7] = words[8] = threads
        self._ctx = lib.llama_init_from_model(self._model, params)
        if not self._ctx:
            lib.llama_model_free(self._model)
            raise EngineError(f"llama.cpp could not create a context for {path}")
        self._vocab = lib.llama_model_get_vocab(self._model)
        self.n_vocab = int(lib.llama_vocab_n_tokens(self._vocab))

    def tokenize(
        self, text: str, *, add_bos: bool = True, parse_special: bool = False
    ) -> list[int]:
        raw = text.encode()
        room = len(raw) + 16
        buf = (C.c_int32 * room)()
        n = self._lib.llama_tokenize(self._vocab, raw, len(raw), buf, room, add_bos, parse_special)
        if n < 0:
            raise EngineError("tokenization overflowed")
        return list(buf[:n])

    def logits(self, tokens: list[int]) -> np.ndarray:
        """Float32 ``(len(tokens), n_vocab)``: row i predicts token i + 1."""
        n = len(tokens)
        if not 0 < n <= self.context:
            raise EngineError(f"score windows hold 1..{self.context} tokens, got {n}")
        self.clear()
        out = self.decode_chunk(tokens, 0, want=n)
        assert out is not None
        return out

    def clear(self) -> None:
        """Forget every position (the next decode starts a new sequence)."""
        self._lib.llama_memory_clear(self._lib.llama_get_memory(self._ctx), True)

    def decode_chunk(self, tokens: list[int], start: int, want: int) -> np.ndarray | None:
        """Decode ``tokens`` at positions ``start..``, continuing the sequence; returns the
        logits of the first ``want`` of them (float32 ``(want, n_vocab)``), or None."""
        n = len(tokens)
        if want <= 0:
            return None  # nothing after these positions is asked for: no need to run them
        lib = self._lib
        batch = lib.llama_batch_init(n, 0, 1)
        try:
            for i, token in enumerate(tokens):
                batch.token[i] = token
                batch.pos[i] = start + i
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = 0
                batch.logits[i] = 1 if i < want else 0
            batch.n_tokens = n
            if lib.llama_decode(self._ctx, batch) != 0:
                raise EngineError("llama_decode failed")
            out = np.empty((want, self.n_vocab), dtype=np.float32)
            for i in range(want):
                ptr = lib.llama_get_logits_ith(self._ctx, i)
                out[i] = np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))
            return out
        finally:
            lib.llama_batch_free(batch)

    def close(self) -> None:
        if self._ctx:
            self._lib.llama_free(self._ctx)
            self._ctx = None
        if self._model:
            self._lib.llama_model_free(self._model)
            self._model = None

    def __enter__(self) -> LogitsModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
