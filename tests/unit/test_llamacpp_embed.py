"""llama.cpp embeddings without a model: a stub stands in for ``xllamacpp.Server`` and
answers ``handle_embeddings`` in the shape the real one does (checked on SmolLM2)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from terminus.engines.llamacpp import LlamaCppEngine
from terminus.engines.llamacpp_embed import (
    LlamaCppEmbedModel,
    configure_embedding,
    pooling_of,
)
from terminus.engines.llamacpp_params import ParamsRecorder, build_params
from terminus.errors import (
    ContextLengthExceededError,
    EngineError,
    InvalidParameterError,
)
from terminus.models.card import ModelCard, ModelFile
from terminus.types import EmbedRequest
from terminus.types.common import Capability


def card(**defaults: Any) -> ModelCard:
    return ModelCard(
        id="gguf-embed",
        capability="embed",  # type: ignore[arg-type]
        engine="llamacpp",
        files=(ModelFile(name="m.gguf", sha256="0" * 64),),
        defaults=defaults,
    )


class StubServer:
    """Replies like xllamacpp: OpenAI-shaped data (here out of order) and usage."""

    def __init__(self, reply: Any = None) -> None:
        self.reply = reply
        self.bodies: list[dict[str, Any]] = []

    def handle_embeddings(self, body: dict[str, Any]) -> Any:
        self.bodies.append(body)
        if isinstance(self.reply, Exception):
            raise self.reply
        if self.reply is not None:
            return self.reply
        data = [
            {"object": "embedding", "index": i, "embedding": [float(i + 1), 0.0, 2.0 * (i + 1)]}
            for i, _ in enumerate(body["input"])
        ]
        return {
            "model": "m.gguf",
            "object": "list",
            "data": list(reversed(data)),
            "usage": {"prompt_tokens": 4 * len(data), "total_tokens": 4 * len(data)},
        }


def model(server: Any, dimensions: int | None = 3, **defaults: Any) -> LlamaCppEmbedModel:
    return LlamaCppEmbedModel(card(**defaults), server, 512, 2, 1000, dimensions)


def test_vectors_in_input_order_with_llama_cpp_token_counts() -> None:
    server = StubServer()
    out = model(server).embed(EmbedRequest(model="e", inputs=("a", "b", "c"), normalize=False))
    assert server.bodies == [{"input": ["a", "b", "c"]}]
    assert out.vectors.dtype == np.float32
    assert out.vectors.tolist() == [[1, 0, 2], [2, 0, 4], [3, 0, 6]]
    assert out.prompt_tokens == 12 and out.model == "e"


def test_normalized_per_request() -> None:
    out = model(StubServer()).embed(EmbedRequest(model="e", inputs=("a", "b")))
    assert np.allclose(np.linalg.norm(out.vectors, axis=1), 1.0)
    assert np.allclose(out.vectors[0], out.vectors[1])


def test_dimensions_from_the_model_when_gguf_metadata_lacks_them() -> None:
    assert model(StubServer(), dimensions=None).dimensions == 3


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (
            {
                "error": {
                    "code": 500,
                    "message": "input (2290 tokens) is too large to process. increase the "
                    "physical batch size (current batch size: 512)",
                    "type": "server_error",
                }
            },
            ContextLengthExceededError,
        ),
        (
            {
                "error": {
                    "code": 400,
                    "message": "Input content cannot be empty",
                    "type": "invalid_request_error",
                }
            },
            InvalidParameterError,
        ),
        ({"error": {"code": 500, "message": "boom", "type": "server_error"}}, EngineError),
        (ValueError("bad input"), InvalidParameterError),
        (RuntimeError("crashed"), EngineError),
        ({"data": [], "usage": {}}, EngineError),  # fewer vectors than inputs
        ({"data": [{"index": 0, "embedding": [[1.0, 2.0]]}]}, EngineError),  # pooling none
    ],
)
def test_errors_are_typed(reply: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        model(StubServer(reply)).embed(EmbedRequest(model="e", inputs=("a",)))


def test_unloaded_model_refuses() -> None:
    m = model(StubServer())
    m.close()
    with pytest.raises(EngineError, match="unloaded"):
        m.embed(EmbedRequest(model="e", inputs=("a",)))


def test_pooling_comes_from_the_card() -> None:
    assert pooling_of(card()) == "mean"
    assert pooling_of(card(pooling="LAST")) == "last"
    with pytest.raises(InvalidParameterError, match="pooling"):
        pooling_of(card(pooling="rank"))


@pytest.mark.parametrize(("pooling", "value"), [("mean", 1), ("cls", 2), ("last", 3)])
def test_server_parameters_for_embeddings(pooling: str, value: int) -> None:
    """Recorded in the host, built on a real ``CommonParams`` as the worker builds it."""
    recorder: Any = ParamsRecorder()
    recorder.n_batch = 256
    recorder.n_ubatch = 4096  # a higher setting stays
    configure_embedding(recorder, card(pooling=pooling), 1024)
    params = build_params(recorder.assignments)
    assert params.embedding is True
    assert int(params.pooling_type) == value
    assert params.embd_normalize == -1  # normalized by Terminus, per request
    assert params.kv_unified is True  # per-slot caches give wrong batched vectors
    assert params.n_batch == 1024 and params.n_ubatch == 4096  # one input, one batch


def test_engine_advertises_embeddings() -> None:
    assert Capability.EMBED in LlamaCppEngine.capabilities
