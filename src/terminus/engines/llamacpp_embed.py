"""Embeddings from GGUF models through llama.cpp (``xllamacpp.Server.handle_embeddings``).

A card with ``capability = "embed"`` and ``engine = "llamacpp"`` loads the server
with ``embedding = True`` and the card's ``pooling`` default (``mean`` | ``cls`` |
``last``; ``mean`` when unset). llama.cpp's own normalization is turned off and the
vectors are L2-normalized here, per request.

Two settings matter for correctness:

- the KV cache is unified across slots: with one cache stream per slot, llama.cpp
  returns wrong vectors for every sequence but the first when one batch spans several
  slots (SmolLM2, xllamacpp 2026.10: errors of 18 on vectors of norm ~30), while
  with a unified cache batched and one-by-one vectors agree to 1e-6;
- pooled embeddings need each input inside one physical batch, so ``n_batch`` and
  ``n_ubatch`` are at least the context per slot; a longer input is refused with
  ``ContextLengthExceededError``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from terminus.engines.llamacpp_events import map_engine_exception, map_error_chunk
from terminus.engines.llamacpp_params import AtLeast, Native
from terminus.errors import (
    ContextLengthExceededError,
    EngineError,
    InvalidParameterError,
    TerminusError,
)
from terminus.models.card import ModelCard
from terminus.types import Embeddings, EmbedRequest

if TYPE_CHECKING:
    import numpy as np

POOLING = {
    "mean": "LLAMA_POOLING_TYPE_MEAN",
    "cls": "LLAMA_POOLING_TYPE_CLS",
    "last": "LLAMA_POOLING_TYPE_LAST",
}
NO_NORMALIZATION = -1  # llama.cpp's embd_normalize: -1 none, 2 L2


def pooling_of(card: ModelCard) -> str:
    pooling = str(card.defaults.get("pooling", "mean")).lower()
    if pooling not in POOLING:
        raise InvalidParameterError(
            f"{card.id}: pooling {pooling!r} is not one of {', '.join(POOLING)}"
        )
    return pooling


def configure_embedding(params: Any, card: ModelCard, context: int) -> None:
    """Make load settings (a ``ParamsRecorder``) an embedding server's."""
    params.embedding = True
    params.pooling_type = Native(f"llama_pooling_type.{POOLING[pooling_of(card)]}")
    params.embd_normalize = NO_NORMALIZATION
    params.kv_unified = True
    params.n_batch = AtLeast(context)
    params.n_ubatch = AtLeast(context)


class LlamaCppEmbedModel:
    def __init__(
        self,
        card: ModelCard,
        server: Any,
        context: int,
        parallel: int,
        memory: int,
        dimensions: int | None,
    ) -> None:
        self.card = card
        self.context_length = context
        self.parallel = parallel
        self.memory_bytes = memory
        self.pooling = pooling_of(card)
        self._server = server
        self.dimensions = dimensions or int(self._raw(["dimensions"])[0].shape[1])

    def close(self) -> None:
        server, self._server = self._server, None
        close = getattr(server, "close", None)
        if close is not None:
            close()

    @property
    def server(self) -> Any:
        """The worker-backed stand-in for ``xllamacpp.Server`` (same ``handle_*`` calls)."""
        return self._server

    @property
    def worker_pid(self) -> int | None:
        """The worker process's id while one runs (tests and diagnostics)."""
        return getattr(self._server, "pid", None)

    def embed(self, request: EmbedRequest) -> Embeddings:
        import numpy as np

        started = time.perf_counter()
        vectors, tokens = self._raw(list(request.inputs))
        if request.normalize:
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors /= np.maximum(norms, np.float32(1e-12))
        return Embeddings(request.model, vectors, tokens, time.perf_counter() - started)

    def _raw(self, inputs: list[str]) -> tuple[np.ndarray[Any, Any], int]:
        """Unnormalized float32 vectors in input order, and llama.cpp's prompt token count."""
        import numpy as np

        server = self._server
        if server is None:
            raise EngineError(f"{self.card.id} was unloaded")
        try:
            response = server.handle_embeddings({"input": inputs})
        except TerminusError:
            raise  # the worker crashed
        except Exception as exc:
            raise map_engine_exception(exc) from exc
        if "error" in response:
            raise _map_embed_error(response["error"])
        data = sorted(response.get("data") or (), key=lambda item: int(item.get("index", 0)))
        if len(data) != len(inputs):
            raise EngineError(f"llama.cpp returned {len(data)} vectors for {len(inputs)} inputs")
        vectors = np.asarray([item["embedding"] for item in data], dtype=np.float32)
        if vectors.ndim != 2:  # pooling "none" would give one vector per token
            raise EngineError(f"llama.cpp returned vectors of shape {vectors.shape}")
        usage = response.get("usage") or {}
        return vectors, int(usage.get("prompt_tokens") or 0)


def _map_embed_error(error: dict[str, Any]) -> Exception:
    message = str(error.get("message", "llama.cpp error"))
    if "too large to process" in message:
        return ContextLengthExceededError(
            f"an input is longer than the context: {message}",
            hint="shorten the input or load the model with a larger context_length",
        )
    return map_error_chunk(error)
