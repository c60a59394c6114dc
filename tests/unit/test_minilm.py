"""The numpy BERT engine on a tiny random model: numerics against a naive float64 forward
pass, batching and truncation invariances, pooling modes, and load-time checks.

The real all-MiniLM-L6-v2 against sentence-transformers is in
tests/integration/test_real_embeddings.py.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from terminus import Terminus
from terminus.engines import minilm
from terminus.engines.base import LoadOptions
from terminus.engines.minilm import MiniLMEngine, _chunks, _gelu, _groups, _pool
from terminus.engines.registry import engine_class
from terminus.errors import CapabilityError, EngineError
from terminus.models.cache import ModelFiles
from terminus.models.card import LocalSource, ModelCard, ModelFile
from terminus.types import EmbedRequest

WORDS = [
    *("the", "cat", "sat", "on", "mat", "a", "dog", "ran", "in"),
    *("park", "tax", "law", "is", "due", "april", "hello", "world"),
]
CONFIG: dict[str, Any] = {
    "model_type": "bert",
    "hidden_act": "gelu",
    "hidden_size": 16,
    "num_attention_heads": 2,
    "num_hidden_layers": 2,
    "intermediate_size": 32,
    "max_position_embeddings": 64,
    "type_vocab_size": 2,
    "layer_norm_eps": 1e-12,
}
TEXTS = ["the cat sat on the mat", "a dog", "hello", "tax law is due in april", "the the the"]


def _tokenizer_json(path: Path) -> None:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3}
    vocab.update({w: i + 4 for i, w in enumerate(WORDS)})
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    tok.enable_truncation(max_length=5)  # shipped settings the engine must override
    tok.enable_padding(length=8)
    tok.save(str(path))


def _weights(vocab: int) -> dict[str, np.ndarray[Any, Any]]:
    rng = np.random.default_rng(7)
    h, inner = CONFIG["hidden_size"], CONFIG["intermediate_size"]

    def r(*shape: int, scale: float = 0.3) -> np.ndarray[Any, Any]:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    w = {
        "embeddings.word_embeddings.weight": r(vocab, h),
        "embeddings.position_embeddings.weight": r(CONFIG["max_position_embeddings"], h),
        "embeddings.token_type_embeddings.weight": r(2, h),
        "embeddings.LayerNorm.weight": 1 + r(h, scale=0.1),
        "embeddings.LayerNorm.bias": r(h, scale=0.1),
    }
    for i in range(CONFIG["num_hidden_layers"]):
        at = f"encoder.layer.{i}."
        for name, (out, inp) in {
            "attention.self.query": (h, h),
            "attention.self.key": (h, h),
            "attention.self.value": (h, h),
            "attention.output.dense": (h, h),
            "intermediate.dense": (inner, h),
            "output.dense": (h, inner),
        }.items():
            w[at + name + ".weight"] = r(out, inp)
            w[at + name + ".bias"] = r(out, scale=0.1)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            w[at + ln + ".weight"] = 1 + r(h, scale=0.1)
            w[at + ln + ".bias"] = r(h, scale=0.1)
    return w


@pytest.fixture()
def tiny_folder(tmp_path: Path) -> Path:
    from safetensors.numpy import save_file

    folder = tmp_path / "tiny-bert"
    (folder / "1_Pooling").mkdir(parents=True)
    _tokenizer_json(folder / "tokenizer.json")
    save_file(_weights(len(WORDS) + 4), str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(CONFIG))
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": 16, "pooling_mode_mean_tokens": True})
    )
    (folder / "modules.json").write_text(
        json.dumps(
            [
                {"idx": 0, "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                {"idx": 2, "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
            ]
        )
    )
    return folder


NAMES = (
    "model.safetensors",
    "config.json",
    "tokenizer.json",
    "modules.json",
    "1_Pooling/config.json",
)


def tiny_card(folder: Path, card_id: str = "tiny-bert", **defaults: Any) -> ModelCard:
    files = tuple(
        ModelFile(
            name=name,
            sha256=hashlib.sha256((folder / name).read_bytes()).hexdigest(),
            size=(folder / name).stat().st_size,
        )
        for name in NAMES
    )
    return ModelCard(
        id=card_id,
        capability="embed",  # type: ignore[arg-type]
        engine="minilm",
        format="safetensors",
        files=files,
        sources=(LocalSource(paths={n: str(folder / n) for n in NAMES}),),
        defaults={"max_tokens": 32, **defaults},
    )


def tiny_files(folder: Path) -> ModelFiles:
    return ModelFiles(folder, {n: folder / n for n in NAMES})


def naive_embedding(folder: Path, ids: list[int]) -> np.ndarray[Any, Any]:
    """A float64, one-text, no-padding BERT forward pass written for clarity, not speed."""
    from safetensors.numpy import load_file

    w = {k: v.astype(np.float64) for k, v in load_file(str(folder / "model.safetensors")).items()}
    erf = np.vectorize(math.erf)

    def ln(x: np.ndarray[Any, Any], name: str) -> np.ndarray[Any, Any]:
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + 1e-12) * w[name + ".weight"] + w[name + ".bias"]

    def dense(x: np.ndarray[Any, Any], name: str) -> np.ndarray[Any, Any]:
        return x @ w[name + ".weight"].T + w[name + ".bias"]

    n, heads, h = len(ids), CONFIG["num_attention_heads"], CONFIG["hidden_size"]
    d = h // heads
    x = w["embeddings.word_embeddings.weight"][ids]
    x = x + w["embeddings.position_embeddings.weight"][:n]
    x = ln(x + w["embeddings.token_type_embeddings.weight"][0], "embeddings.LayerNorm")
    for i in range(CONFIG["num_hidden_layers"]):
        at = f"encoder.layer.{i}."
        q, k, v = (dense(x, at + f"attention.self.{p}") for p in ("query", "key", "value"))
        context = np.zeros_like(x)
        for head in range(heads):
            cols = slice(head * d, (head + 1) * d)
            scores = q[:, cols] @ k[:, cols].T / math.sqrt(d)
            probs = np.exp(scores - scores.max(-1, keepdims=True))
            probs /= probs.sum(-1, keepdims=True)
            context[:, cols] = probs @ v[:, cols]
        x = ln(x + dense(context, at + "attention.output.dense"), at + "attention.output.LayerNorm")
        up = dense(x, at + "intermediate.dense")
        up = up * 0.5 * (1 + erf(up / math.sqrt(2)))
        x = ln(x + dense(up, at + "output.dense"), at + "output.LayerNorm")
    return x.mean(axis=0)


@pytest.fixture()
def tiny_model(tiny_folder: Path) -> minilm.MiniLMModel:
    return MiniLMEngine().load(
        tiny_card(tiny_folder), tiny_files(tiny_folder), LoadOptions(threads=1)
    )


def embed(model: minilm.MiniLMModel, texts: list[str], normalize: bool = True) -> Any:
    return model.embed(EmbedRequest(model="tiny-bert", inputs=tuple(texts), normalize=normalize))


# -- numerics ------------------------------------------------------------------------------


def test_forward_pass_matches_a_naive_float64_bert(
    tiny_folder: Path, tiny_model: minilm.MiniLMModel
) -> None:
    out = embed(tiny_model, TEXTS, normalize=False)
    ids = tiny_model.tokenize(TEXTS)
    assert ids[0][0] == 2 and ids[0][-1] == 3  # [CLS] ... [SEP], no shipped padding
    expected = np.stack([naive_embedding(tiny_folder, seq) for seq in ids])
    assert out.vectors.dtype == np.float32 and out.vectors.shape == (len(TEXTS), 16)
    assert np.abs(out.vectors - expected).max() < 1e-5
    assert out.prompt_tokens == sum(len(seq) for seq in ids)


def test_packing_sorting_and_chunking_change_nothing(
    tiny_folder: Path, tiny_model: minilm.MiniLMModel
) -> None:
    batch = embed(tiny_model, TEXTS).vectors
    single = np.stack([embed(tiny_model, [t]).vectors[0] for t in TEXTS])
    assert np.abs(batch - single).max() < 1e-6
    small = MiniLMEngine().load(
        tiny_card(tiny_folder), tiny_files(tiny_folder), LoadOptions(extra={"batch_tokens": 8})
    )
    assert small.batch_tokens == 32  # never below one full-length text
    assert np.abs(embed(small, TEXTS * 3).vectors - np.vstack([batch] * 3)).max() < 1e-6


def test_vectors_are_normalized_on_request(tiny_model: minilm.MiniLMModel) -> None:
    unit = embed(tiny_model, TEXTS).vectors
    raw = embed(tiny_model, TEXTS, normalize=False).vectors
    assert np.allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-6)
    assert np.allclose(raw / np.linalg.norm(raw, axis=1, keepdims=True), unit, atol=1e-6)


def test_truncates_to_the_card_max_tokens(tiny_folder: Path) -> None:
    model = MiniLMEngine().load(
        tiny_card(tiny_folder, max_tokens=6), tiny_files(tiny_folder), LoadOptions()
    )
    assert model.context_length == 6 and model.dimensions == 16
    out = embed(model, ["the cat sat on the mat", "the cat sat on a dog in the park"])
    assert out.prompt_tokens == 12
    assert np.allclose(out.vectors[0], out.vectors[1], atol=1e-6)  # same first 4 words
    capped = MiniLMEngine().load(
        tiny_card(tiny_folder, max_tokens=1000), tiny_files(tiny_folder), LoadOptions()
    )
    assert capped.max_tokens == CONFIG["max_position_embeddings"]


def test_gelu_is_the_exact_erf_gelu() -> None:
    x = np.linspace(-12, 12, 100_000, dtype=np.float32).reshape(-1, 5)  # two row blocks
    expected = np.array([v * 0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x.ravel().tolist()])
    got = _gelu(x)
    assert got is x  # in place
    assert np.allclose(got.ravel(), expected, rtol=3e-7, atol=1e-6)


def test_pooling_modes_follow_sentence_transformers() -> None:
    hidden = np.arange(5 * 2, dtype=np.float32).reshape(5, 2)  # packed: 3 tokens, then 2
    lengths = np.array([3, 2])
    assert np.allclose(_pool(hidden, lengths, ("mean_tokens",)), [[2, 3], [7, 8]])
    assert np.allclose(_pool(hidden, lengths, ("cls_token",)), [[0, 1], [6, 7]])
    assert np.allclose(_pool(hidden, lengths, ("max_tokens",)), [[4, 5], [8, 9]])
    assert np.allclose(_pool(hidden, lengths, ("lasttoken",)), [[4, 5], [8, 9]])
    sqrt = _pool(hidden, lengths, ("mean_sqrt_len_tokens",))
    root3, root2 = math.sqrt(3), math.sqrt(2)
    assert np.allclose(sqrt, [[6 / root3, 9 / root3], [14 / root2, 16 / root2]])
    both = _pool(hidden, lengths, ("cls_token", "mean_tokens"))
    assert both.shape == (2, 4) and both.dtype == np.float32


@pytest.mark.parametrize(
    ("lengths", "budget"),
    [([5, 1, 9, 3, 3, 7], 12), ([4] * 10, 8), ([30, 2], 16), ([1], 1), (list(range(1, 40)), 64)],
)
def test_chunks_cover_every_row_once_within_the_budget(lengths: list[int], budget: int) -> None:
    groups = _chunks(lengths, budget)
    order = [i for g in groups for i in g]
    assert sorted(order) == list(range(len(lengths)))
    assert [lengths[i] for i in order] == sorted(lengths)  # equal lengths are adjacent
    for group in groups:
        assert sum(lengths[i] for i in group) <= budget or len(group) == 1


def test_attention_groups_are_runs_of_equal_length_within_the_cache_cap() -> None:
    assert _groups([2, 2, 3, 5, 5, 5], heads=2) == [(0, 2, 2), (4, 1, 3), (7, 3, 5)]
    many = _groups([256] * 3, heads=12)  # 12 * 256 * 256 floats each: alone in a group
    assert many == [(0, 1, 256), (256, 1, 256), (512, 1, 256)]


# -- engine plumbing -----------------------------------------------------------------------


def test_through_the_client_cache_and_registry(client: Terminus, tiny_folder: Path) -> None:
    assert engine_class("minilm") is MiniLMEngine
    client.catalog.register(tiny_card(tiny_folder))
    out = client.embed(["the cat", "a dog"], model="tiny-bert")
    assert out.vectors.shape == (2, 16) and out.model == "tiny-bert"
    info = client.loaded_models()[0]
    assert info.engine == "minilm" and info.context_length == 32
    assert info.memory_bytes == MiniLMEngine().estimate_memory(
        tiny_card(tiny_folder), tiny_files(tiny_folder), LoadOptions()
    )


def test_probe_names_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    assert MiniLMEngine.probe().ok
    real = minilm.importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name in ("tokenizers", "safetensors") else real(name, *args)

    monkeypatch.setattr(minilm.importlib.util, "find_spec", find_spec)
    availability = MiniLMEngine.probe()
    assert not availability.ok
    assert "tokenizers, safetensors" in availability.detail


def test_load_refuses_what_it_cannot_run(tiny_folder: Path) -> None:
    files = tiny_files(tiny_folder)
    card = tiny_card(tiny_folder)
    chat = card.model_copy(update={"capability": "chat"})
    with pytest.raises(CapabilityError):
        MiniLMEngine().load(chat, files, LoadOptions())
    modules = json.loads((tiny_folder / "modules.json").read_text())
    modules.append({"idx": 3, "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
    (tiny_folder / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(EngineError, match="Dense"):
        MiniLMEngine().load(card, files, LoadOptions())
    (tiny_folder / "modules.json").unlink()
    (tiny_folder / "config.json").write_text(json.dumps({**CONFIG, "hidden_act": "relu"}))
    with pytest.raises(EngineError, match="GELU"):
        MiniLMEngine().load(card, files, LoadOptions())


def test_unloaded_model_refuses_to_embed(tiny_model: minilm.MiniLMModel) -> None:
    tiny_model.close()
    with pytest.raises(EngineError, match="unloaded"):
        embed(tiny_model, ["the cat"])


def test_blas_threads_are_limited_during_the_forward_pass(tiny_folder: Path) -> None:
    model = MiniLMEngine().load(
        tiny_card(tiny_folder), tiny_files(tiny_folder), LoadOptions(threads=3)
    )
    assert model.threads == 3
    calls: list[tuple[int, str]] = []

    class Recorder:
        def limit(self, *, limits: int, user_api: str) -> Any:
            import contextlib

            calls.append((limits, user_api))
            return contextlib.nullcontext()

    model._blas = Recorder()
    embed(model, ["the cat"])
    assert calls == [(3, "blas")]
