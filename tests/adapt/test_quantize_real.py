"""Quantization of the real SmolLM2 (from its dequantized F32): Q8_0, Q4_K_M, Q4_K_M + imatrix."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import gguf
import numpy as np
import pytest
from conftest import THREADS, pubmed_text

from terminus import Terminus
from terminus.models.card import ModelCard
from terminus.quantize.compare import ModelScore, format_table

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def quants(
    adapt_client: Terminus, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, ModelCard]:
    folder = tmp_path_factory.mktemp("imatrix")
    t = adapt_client
    f32 = t.quantize("smollm2", "F32", model_id="smollm2-f32")
    q8 = t.quantize("smollm2-f32", "Q8_0")
    q4 = t.quantize("smollm2-f32", "Q4_K_M")
    q4i = t.quantize(
        "smollm2-f32",
        "Q4_K_M",
        calibration_text=pubmed_text(0, 8),
        save_imatrix=folder / "smollm2.imatrix",
        threads=THREADS,
    )
    reused = t.quantize(
        "smollm2-f32", "Q4_K_M", imatrix=folder / "smollm2.imatrix", model_id="smollm2-q4km-again"
    )
    return {"f32": f32, "q8": q8, "q4": q4, "q4i": q4i, "reused": reused}


@pytest.fixture(scope="module")
def scores(
    adapt_client: Terminus, quants: dict[str, ModelCard], tmp_path_factory: pytest.TempPathFactory
) -> tuple[list[ModelScore], Path]:
    png = tmp_path_factory.mktemp("chart") / "compare.png"
    result = adapt_client.compare(
        "smollm2-f32",
        [quants["q8"].id, quants["q4"].id, quants["q4i"].id],
        pubmed_text(100, 140),  # not the calibration text
        context=256,
        max_windows=4,
        threads=1,
        plot=png,
    )
    print("\n" + format_table(result))
    return result, png


def _blob(t: Terminus, card: ModelCard) -> Path:
    return t.cache.files(card).main


def test_cards_name_their_base_and_files_are_verified(
    adapt_client: Terminus, quants: dict[str, ModelCard]
) -> None:
    assert quants["q4i"].id == "smollm2-f32-q4-k-m-imatrix"
    assert quants["q8"].base_model == "smollm2-f32"
    for card in quants.values():
        assert all(r.ok for r in adapt_client.cache.verify(card))
    assert not list((adapt_client.home / "tmp").rglob("*.gguf"))  # staging cleaned up


def test_q8_0_tensors_equal_the_gguf_reference_byte_for_byte(
    adapt_client: Terminus, quants: dict[str, ModelCard]
) -> None:
    source = gguf.GGUFReader(str(_blob(adapt_client, quants["f32"])))
    quant = gguf.GGUFReader(str(_blob(adapt_client, quants["q8"])))
    by_name = {t.name: t for t in quant.tensors}
    checked = 0
    for tensor in source.tensors:
        if tensor.name not in ("blk.0.attn_q.weight", "blk.7.ffn_down.weight", "token_embd.weight"):
            continue
        values = np.asarray(tensor.data, dtype=np.float32)
        expected = gguf.quants.quantize(values, gguf.GGMLQuantizationType.Q8_0)
        assert by_name[tensor.name].tensor_type == gguf.GGMLQuantizationType.Q8_0
        assert bytes(by_name[tensor.name].data) == expected.tobytes()
        checked += 1
    assert checked == 3


def test_q4_k_m_uses_llama_cpp_mixture(
    adapt_client: Terminus, quants: dict[str, ModelCard]
) -> None:
    reader = gguf.GGUFReader(str(_blob(adapt_client, quants["q4"])))
    kinds = {t.name: t.tensor_type.name for t in reader.tensors}
    assert kinds["blk.0.ffn_down.weight"] == "Q6_K"  # use_more_bits layer, 1536 columns
    assert kinds["blk.4.ffn_down.weight"] == "Q4_K"
    assert kinds["blk.4.attn_q.weight"] == "Q5_0"  # 576 columns: llama.cpp's K-quant fallback
    assert kinds["token_embd.weight"] == "Q8_0"  # tied output: Q6_K → Q8_0 fallback
    assert kinds["blk.0.attn_norm.weight"] == "F32"
    assert Counter(kinds.values())["Q4_K"] == 16


def test_saved_imatrix_reproduces_the_calibrated_quant(
    adapt_client: Terminus, quants: dict[str, ModelCard]
) -> None:
    assert quants["reused"].main_file.sha256 == quants["q4i"].main_file.sha256
    assert quants["q4i"].main_file.sha256 != quants["q4"].main_file.sha256


def test_quality_table(scores: tuple[list[ModelScore], Path]) -> None:
    result, png = scores
    f32, q8, q4, q4i = result
    assert f32.mean_kl == 0 and f32.top1_agreement == 1 and f32.tokens == 4 * 255
    assert math.isfinite(f32.perplexity) and 1 < f32.perplexity < 200
    assert abs(q8.perplexity / f32.perplexity - 1) < 0.02
    assert q8.mean_kl < q4i.mean_kl < q4.mean_kl
    assert q8.top1_agreement > q4.top1_agreement
    assert f32.size_bytes > 3 * q8.size_bytes > 3 * q4.size_bytes
    # the importance matrix measurably reduces the perplexity increase of Q4_K_M
    assert q4i.perplexity - f32.perplexity < 0.8 * (q4.perplexity - f32.perplexity)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_quantized_model_loads_and_answers_like_its_source(
    adapt_client: Terminus, quants: dict[str, ModelCard]
) -> None:
    answers = []
    for card_id in ("smollm2-f32", quants["q8"].id):
        adapt_client.load_model(card_id, threads=1, context_length=512, parallel=1)
        answers.append(
            adapt_client.completion(
                "What is the capital of France?", model=card_id, temperature=0, max_tokens=12
            ).text
        )
        adapt_client.unload_model(card_id)
    assert "Paris" in answers[0]
    assert answers[1] == answers[0]


def test_lineage_records_the_source_and_its_coarser_origin(
    adapt_client: Terminus, quants: dict[str, ModelCard]
) -> None:
    shipped = adapt_client.catalog.get("smollm2")
    f32 = quants["f32"].lineage
    assert f32 is not None
    assert f32["source_model"] == shipped.id and f32["source_type"] == "Q4_1"
    assert f32["source_sha256"] == shipped.files[0].sha256
    assert "already Q4_1" in f32["warning"]  # F32 from 4-bit weights is still 4-bit
    q8 = quants["q8"].lineage
    assert q8 is not None and q8["source_type"] == "F32" and q8["origin_type"] == "Q4_1"
    assert "via F32" in q8["warning"] and q8["type"] == "Q8_0"
    assert quants["q4i"].lineage is not None and quants["q4i"].lineage["imatrix"] is True
    reread = adapt_client.catalog.get(quants["q8"].id)  # the lineage survives the saved card
    assert reread.lineage == quants["q8"].lineage
