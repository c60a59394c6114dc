"""Sentence embeddings from BERT-family models (all-MiniLM-L6-v2) in plain numpy.

No torch: the tokenizer is the Rust ``tokenizers`` package reading the model's
``tokenizer.json``, the weights come from ``safetensors.numpy``, and the forward
pass is float32 numpy (one fused QKV matmul per layer, batched attention through
``np.matmul``). Pooling follows the sentence-transformers folder: ``modules.json``
must be Transformer → Pooling (→ Normalize), and ``1_Pooling/config.json`` says
which pooling modes to use. Vectors are L2-normalized when the request asks.

Texts are packed, never padded: the matmuls run on real tokens only, in chunks of at
most ``batch_tokens``; texts are sorted by token count so that attention runs on
groups of equal-length texts without a mask. Each text is truncated to the card's
``max_tokens`` (special tokens included), as sentence-transformers does.
"""

from __future__ import annotations

import contextlib
import importlib.metadata as md
import importlib.util
import itertools
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from terminus.engines.base import Availability, LoadOptions
from terminus.engines.llamacpp import default_threads
from terminus.errors import (
    CapabilityError,
    EngineError,
    EngineUnavailableError,
    InvalidParameterError,
)
from terminus.models.cache import ModelFiles
from terminus.models.card import ModelCard
from terminus.types import Embeddings, EmbedRequest
from terminus.types.common import Capability, model_kind

if TYPE_CHECKING:
    import numpy as np

    Array = np.ndarray[Any, Any]

REQUIRED = ("numpy", "tokenizers", "safetensors")
DEFAULT_MAX_TOKENS = 256
#: Tokens per forward chunk: bounds the working memory while keeping the matmuls large
#: enough to run at the BLAS's full speed.
DEFAULT_BATCH_TOKENS = 2048
_SCORES_CAP = 1 << 18  # floats of attention scores per group of texts (1 MiB)
_POOLING_MODES = ("cls_token", "max_tokens", "mean_tokens", "mean_sqrt_len_tokens", "lasttoken")
_SUPPORTED_MODULES = {
    "sentence_transformers.models.Transformer",
    "sentence_transformers.models.Pooling",
    "sentence_transformers.models.Normalize",
}


class MiniLMEngine:
    name: ClassVar[str] = "minilm"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.EMBED})

    @classmethod
    def probe(cls) -> Availability:
        missing = [name for name in REQUIRED if importlib.util.find_spec(name) is None]
        if missing:
            return Availability(
                False, f"missing {', '.join(missing)}; pip install {' '.join(missing)}"
            )
        try:
            version = md.version("tokenizers")
        except md.PackageNotFoundError:
            version = None
        return Availability(
            True, "BERT sentence embeddings in numpy (tokenizers + safetensors)", version
        )

    def estimate_memory(self, card: ModelCard, files: ModelFiles, options: LoadOptions) -> int:
        config = _read_json(_path(files, "config.json"))
        weights = _path(files, "model.safetensors").stat().st_size
        tokenizer = _path(files, "tokenizer.json").stat().st_size
        max_tokens = _max_tokens(card, options, config)
        batch_tokens = _batch_tokens(card, options, max_tokens)
        hidden = int(config["hidden_size"])
        heads = int(config["num_attention_heads"])
        # Per packed token: residual stream, QKV, context and layer-norm temporaries, the
        # MLP activations; plus one attention group's scores (a longest text at worst).
        per_token = 4 * (8 * hidden + 2 * int(config["intermediate_size"]))
        scores = 2 * 4 * max(_SCORES_CAP, heads * max_tokens * max_tokens)
        # Weights once (fused and transposed copies replace the loaded arrays), and
        # the Rust tokenizer (~10x its JSON).
        return weights + 10 * tokenizer + batch_tokens * per_token + scores

    def load(self, card: ModelCard, files: ModelFiles, options: LoadOptions) -> MiniLMModel:
        if card.capability != Capability.EMBED:
            raise CapabilityError(f"{card.id} is {model_kind(card.capability)}; minilm only embeds")
        availability = self.probe()
        if not availability.ok:
            raise EngineUnavailableError(f"the minilm engine cannot run: {availability.detail}")
        config = _read_json(_path(files, "config.json"))
        if config.get("model_type", "bert") != "bert":
            raise EngineError(f"{card.id}: minilm runs BERT models, not {config['model_type']!r}")
        if config.get("position_embedding_type", "absolute") != "absolute":
            raise EngineError(f"{card.id}: only absolute position embeddings are supported")
        if config.get("hidden_act", "gelu") != "gelu":
            raise EngineError(f"{card.id}: only the exact GELU activation is supported")
        modes = _pooling_modes(files)
        max_tokens = _max_tokens(card, options, config)
        batch_tokens = _batch_tokens(card, options, max_tokens)
        try:
            tokenizer = _load_tokenizer(_path(files, "tokenizer.json"), max_tokens)
            weights = _Weights.load(_path(files, "model.safetensors"), config)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise EngineError(f"could not load {card.id}: {exc}") from exc
        memory = self.estimate_memory(card, files, options)
        threads = options.threads or default_threads()
        return MiniLMModel(
            card, tokenizer, weights, modes, max_tokens, batch_tokens, memory, threads
        )


@dataclass(frozen=True)
class _Layer:
    qkv_w: Array  # (hidden, 3 * hidden), the query part pre-scaled by 1/sqrt(head_dim)
    qkv_b: Array
    out_w: Array
    out_b: Array
    ln1_g: Array
    ln1_b: Array
    up_w: Array
    up_b: Array
    down_w: Array
    down_b: Array
    ln2_g: Array
    ln2_b: Array


@dataclass(frozen=True)
class _Weights:
    word: Array
    position: Array
    token_type: Array
    ln_g: Array
    ln_b: Array
    layers: tuple[_Layer, ...]
    heads: int
    eps: float

    @classmethod
    def load(cls, path: Path, config: dict[str, Any]) -> _Weights:
        import numpy as np
        from safetensors.numpy import load_file

        raw = load_file(str(path))
        prefix = "bert." if "bert.embeddings.word_embeddings.weight" in raw else ""

        def get(name: str) -> Array:
            return np.ascontiguousarray(raw[prefix + name], dtype=np.float32)

        def dense(name: str) -> tuple[Array, Array]:
            # torch Linear stores (out, in); x @ W.T is a plain GEMM once transposed here.
            return np.ascontiguousarray(get(name + ".weight").T), get(name + ".bias")

        heads = int(config["num_attention_heads"])
        hidden = int(config["hidden_size"])
        scale = np.float32(1.0 / math.sqrt(hidden // heads))
        layers = []
        for i in range(int(config["num_hidden_layers"])):
            at = f"encoder.layer.{i}."
            (qw, qb), (kw, kb), (vw, vb) = (
                dense(at + f"attention.self.{part}") for part in ("query", "key", "value")
            )
            out_w, out_b = dense(at + "attention.output.dense")
            up_w, up_b = dense(at + "intermediate.dense")
            down_w, down_b = dense(at + "output.dense")
            layers.append(
                _Layer(
                    qkv_w=np.ascontiguousarray(np.concatenate([qw * scale, kw, vw], axis=1)),
                    qkv_b=np.concatenate([qb * scale, kb, vb]),
                    out_w=out_w,
                    out_b=out_b,
                    ln1_g=get(at + "attention.output.LayerNorm.weight"),
                    ln1_b=get(at + "attention.output.LayerNorm.bias"),
                    up_w=up_w,
                    up_b=up_b,
                    down_w=down_w,
                    down_b=down_b,
                    ln2_g=get(at + "output.LayerNorm.weight"),
                    ln2_b=get(at + "output.LayerNorm.bias"),
                )
            )
        return cls(
            word=get("embeddings.word_embeddings.weight"),
            position=get("embeddings.position_embeddings.weight"),
            token_type=get("embeddings.token_type_embeddings.weight"),
            ln_g=get("embeddings.LayerNorm.weight"),
            ln_b=get("embeddings.LayerNorm.bias"),
            layers=tuple(layers),
            heads=heads,
            eps=float(config.get("layer_norm_eps", 1e-12)),
        )

    @property
    def hidden(self) -> int:
        return int(self.word.shape[1])


class MiniLMModel:
    def __init__(
        self,
        card: ModelCard,
        tokenizer: Any,
        weights: _Weights,
        pooling: tuple[str, ...],
        max_tokens: int,
        batch_tokens: int,
        memory: int,
        threads: int,
    ) -> None:
        self.card = card
        self.memory_bytes = memory
        self.max_tokens = max_tokens
        self.context_length = max_tokens  # tokens per text; longer texts are truncated
        self.batch_tokens = batch_tokens
        self.pooling = pooling
        self.dimensions = weights.hidden * len(pooling)
        self.threads = threads
        self._tokenizer = tokenizer
        self._weights: _Weights | None = weights
        self._blas = _blas_controller()

    def close(self) -> None:
        self._weights = None

    def tokenize(self, texts: tuple[str, ...] | list[str]) -> list[list[int]]:
        """Token ids per text, with [CLS]/[SEP], truncated to ``max_tokens``."""
        # One encode per text: encode_batch would start tokenizers' thread pool, which
        # then complains (and disables itself) in every forked child process.
        return [self._tokenizer.encode(text).ids for text in texts]

    def embed(self, request: EmbedRequest) -> Embeddings:
        import numpy as np

        started = time.perf_counter()
        ids = self.tokenize(request.inputs)
        vectors = self.embed_ids(ids)
        if request.normalize:
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors /= np.maximum(norms, np.float32(1e-12))
        tokens = sum(len(seq) for seq in ids)
        return Embeddings(request.model, vectors, tokens, time.perf_counter() - started)

    def embed_ids(self, ids: list[list[int]]) -> Array:
        """Pooled, unnormalized float32 vectors for tokenized texts, in their order."""
        import numpy as np

        weights = self._weights
        if weights is None:
            raise EngineError(f"{self.card.id} was unloaded")
        if any(not seq for seq in ids):
            raise InvalidParameterError("a text has no tokens at all")
        out = np.empty((len(ids), self.dimensions), dtype=np.float32)
        limit = (
            self._blas.limit(limits=self.threads, user_api="blas")
            if self._blas is not None
            else contextlib.nullcontext()
        )
        with limit:
            for rows in _chunks([len(seq) for seq in ids], self.batch_tokens):
                seqs = [ids[r] for r in rows]
                hidden, lengths = _encode(weights, seqs)
                out[rows] = _pool(hidden, lengths, self.pooling)
        return out


# -- the forward pass ----------------------------------------------------------------
#
# Texts are packed: the rows of every matmul are real tokens, never padding. Attention
# runs per group of equal-length texts (consecutive, since chunks are sorted by length),
# so it needs no mask, and each group's scores stay small enough for the CPU cache.


def _encode(w: _Weights, seqs: list[list[int]]) -> tuple[Array, Array]:
    """Last hidden states of packed texts (tokens, hidden), and the texts' lengths."""
    import numpy as np

    hidden = w.hidden
    heads = w.heads
    head_dim = hidden // heads
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    total = int(lengths.sum())
    flat = np.fromiter(itertools.chain.from_iterable(seqs), dtype=np.int64, count=total)
    starts = np.cumsum(lengths) - lengths
    positions = np.arange(total) - np.repeat(starts, lengths)
    x = w.word[flat]
    x += w.position[positions]
    x += w.token_type[0]
    x = _layer_norm(x, w.ln_g, w.ln_b, w.eps)
    groups = _groups(lengths.tolist(), heads)
    for layer in w.layers:
        qkv = x @ layer.qkv_w
        qkv += layer.qkv_b
        context = np.empty((total, hidden), dtype=np.float32)
        for start, count, n in groups:
            rows = slice(start, start + count * n)
            block = qkv[rows].reshape(count, n, 3, heads, head_dim)
            q = block[:, :, 0].transpose(0, 2, 1, 3)  # (count, heads, n, head_dim)
            k = block[:, :, 1].transpose(0, 2, 3, 1)  # (count, heads, head_dim, n)
            v = block[:, :, 2].transpose(0, 2, 1, 3)
            scores = np.matmul(q, k)  # the query weights carry 1/sqrt(head_dim)
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            out = context[rows].reshape(count, n, heads, head_dim)
            out[...] = np.matmul(scores, v).transpose(0, 2, 1, 3)
        attended = context @ layer.out_w
        attended += layer.out_b
        attended += x
        x = _layer_norm(attended, layer.ln1_g, layer.ln1_b, w.eps)
        up = x @ layer.up_w
        up += layer.up_b
        up = _gelu(up)
        down = up @ layer.down_w
        down += layer.down_b
        down += x
        x = _layer_norm(down, layer.ln2_g, layer.ln2_b, w.eps)
    return x, lengths


def _groups(lengths: list[int], heads: int) -> list[tuple[int, int, int]]:
    """(first token, texts, length) for runs of equal-length texts in packed order."""
    groups: list[tuple[int, int, int]] = []
    start = 0
    for n in lengths:
        if groups:
            first, count, length = groups[-1]
            if length == n and (count + 1) * heads * n * n <= _SCORES_CAP:
                groups[-1] = (first, count + 1, n)
                start += n
                continue
        groups.append((start, 1, n))
        start += n
    return groups


def _layer_norm(x: Array, gain: Array, bias: Array, eps: float) -> Array:
    import numpy as np

    x = x - x.mean(axis=-1, keepdims=True)
    variance = np.mean(np.square(x), axis=-1, keepdims=True)
    x *= 1.0 / np.sqrt(variance + np.float32(eps))
    x *= gain
    x += bias
    return x


# Rational approximation of erf on [-4, 4] (beyond that erf is ±1 in float32); its
# float32 error is under 5e-7, the same as torch's own erf at this precision.
_ERF_NUM = (
    -2.72614225801306e-10,
    2.77068142495902e-08,
    -2.10102402082508e-06,
    -5.69250639462346e-05,
    -7.34990630326855e-04,
    -2.95459980854025e-03,
    -1.60960333262415e-02,
)
_ERF_DEN = (
    -1.45660718464996e-05,
    -2.13374055278905e-04,
    -1.68282697438203e-03,
    -7.37332916720468e-03,
    -1.42647390514189e-02,
)


def _gelu(x: Array) -> Array:
    """Exact (erf) GELU, as BERT's ``hidden_act = "gelu"``, in place, float32.

    Row blocks of ~256 KiB stay in the CPU cache through the ~25 elementwise passes:
    over the whole (tokens, 1536) array at once it costs more than the matmul feeding it.
    """
    rows = max(1, 65536 // max(1, x.shape[-1]))
    for start in range(0, x.shape[0], rows):
        _gelu_block(x[start : start + rows])
    return x


def _gelu_block(x: Array) -> None:
    import numpy as np

    z = np.clip(x * np.float32(1.0 / math.sqrt(2.0)), -4.0, 4.0)
    z2 = z * z
    num = np.full_like(z2, _ERF_NUM[0])
    for c in _ERF_NUM[1:]:
        num *= z2
        num += np.float32(c)
    num *= z
    den = np.full_like(z2, _ERF_DEN[0])
    for c in _ERF_DEN[1:]:
        den *= z2
        den += np.float32(c)
    num /= den  # erf(x / sqrt 2)
    num += 1.0
    num *= np.float32(0.5)
    x *= num


def _pool(hidden: Array, lengths: Array, modes: tuple[str, ...]) -> Array:
    """sentence-transformers' Pooling over packed texts: the enabled modes, concatenated
    in its order."""
    import numpy as np

    starts = np.cumsum(lengths) - lengths
    parts = []
    for mode in modes:
        if mode == "cls_token":
            parts.append(hidden[starts])
        elif mode == "lasttoken":
            parts.append(hidden[starts + lengths - 1])
        elif mode == "max_tokens":
            parts.append(np.maximum.reduceat(hidden, starts, axis=0))
        else:
            summed = np.add.reduceat(hidden, starts, axis=0)
            divisor = lengths.astype(np.float32)[:, None]
            if mode == "mean_sqrt_len_tokens":
                divisor = np.sqrt(divisor)
            parts.append(summed / divisor)
    pooled = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
    return pooled.astype(np.float32, copy=False)


def _chunks(lengths: list[int], batch_tokens: int) -> list[list[int]]:
    """Row indices sorted by length, in groups of at most ``batch_tokens`` tokens (or one
    longer text): equal lengths end up next to each other for attention."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    groups: list[list[int]] = []
    current: list[int] = []
    tokens = 0
    for i in order:
        if current and tokens + lengths[i] > batch_tokens:
            groups.append(current)
            current, tokens = [], 0
        current.append(i)
        tokens += lengths[i]
    if current:
        groups.append(current)
    return groups


# -- files ---------------------------------------------------------------------------


def _path(files: ModelFiles, name: str) -> Path:
    path = files.paths.get(name) or files.root / name
    if not path.exists():
        raise EngineError(f"the model folder {files.root} has no {name}")
    return path


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EngineError(f"cannot read {path.name}: {exc}") from exc
    if not isinstance(data, dict):
        raise EngineError(f"{path.name} is not a JSON object")
    return data


def _max_tokens(card: ModelCard, options: LoadOptions, config: dict[str, Any]) -> int:
    limit = int(config.get("max_position_embeddings", 512))
    wanted = options.context_length or int(card.defaults.get("max_tokens", DEFAULT_MAX_TOKENS))
    return max(2, min(wanted, limit))


def _batch_tokens(card: ModelCard, options: LoadOptions, max_tokens: int) -> int:
    """Tokens per forward chunk: ``batch_tokens`` (load option or card default),
    or ``batch_size``; never less than one full-length text."""
    wanted = (
        options.extra.get("batch_tokens")
        or options.batch_size
        or card.defaults.get("batch_tokens")
        or DEFAULT_BATCH_TOKENS
    )
    return max(int(wanted), max_tokens)


def _pooling_modes(files: ModelFiles) -> tuple[str, ...]:
    """Pooling modes from the sentence-transformers folder (mean if it has none)."""
    modules_path = files.paths.get("modules.json") or files.root / "modules.json"
    if modules_path.exists():
        modules = json.loads(modules_path.read_text(encoding="utf-8"))
        unsupported = [m["type"] for m in modules if m.get("type") not in _SUPPORTED_MODULES]
        if unsupported:
            raise EngineError(f"unsupported sentence-transformers modules: {unsupported}")
    pooling_path = files.paths.get("1_Pooling/config.json") or files.root / "1_Pooling/config.json"
    if not pooling_path.exists():
        return ("mean_tokens",)
    config = _read_json(pooling_path)
    modes = tuple(m for m in _POOLING_MODES if config.get(f"pooling_mode_{m}"))
    if config.get("pooling_mode_weightedmean_tokens"):
        raise EngineError("weighted-mean pooling is not supported")
    return modes or ("mean_tokens",)


def _blas_controller() -> Any:
    """threadpoolctl's handle on numpy's BLAS, or None without threadpoolctl."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController()


def _load_tokenizer(path: Path, max_tokens: int) -> Any:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    # tokenizer.json ships its own truncation/padding (128, fixed); the card decides instead.
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_tokens)
    return tokenizer
