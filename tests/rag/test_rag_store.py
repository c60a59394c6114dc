"""The pieces under a workspace: the matrix, metadata matching, keyword queries, fusion."""

from __future__ import annotations

import numpy as np
import pytest

from terminus.errors import DimensionMismatchError
from terminus.rag.keywords import fts_query, reciprocal_rank_fusion
from terminus.rag.matrix import VectorMatrix
from terminus.rag.store import metadata_matches


def _unit(rows: int, dims: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((rows, dims)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_matrix_top_k_is_exact_and_filters_by_document() -> None:
    vectors = _unit(500, 16)
    matrix = VectorMatrix(16)
    for start in range(0, 500, 100):  # grows in several appends
        ids = np.arange(start, start + 100) + 1000
        matrix.append(ids, ids % 7, vectors[start : start + 100])
    query = vectors[42]
    hits = matrix.top_k(query, 5)
    expected = np.argsort(-(vectors @ query))[:5] + 1000
    assert [cid for cid, _ in hits] == expected.tolist()
    assert hits[0] == (1042, pytest.approx(1.0, abs=1e-5))
    only = matrix.top_k(query, 50, allowed_docs=np.array([3]))
    assert len(only) == 50 and all(cid % 7 == 3 for cid, _ in only)
    assert matrix.top_k(query, 5, allowed_docs=np.array([99])) == []
    assert len(matrix.top_k(query, 10_000)) == 500


def test_matrix_removal_and_dimension_checks() -> None:
    matrix = VectorMatrix(8)
    matrix.append(np.arange(10), np.repeat([1, 2], 5), _unit(10, 8))
    matrix.remove_documents(np.array([1]))
    assert len(matrix) == 5 and {cid for cid, _ in matrix.top_k(_unit(1, 8)[0], 10)} == set(
        range(5, 10)
    )
    with pytest.raises(DimensionMismatchError):
        matrix.top_k(np.ones(7, dtype=np.float32), 1)
    with pytest.raises(DimensionMismatchError):
        matrix.append(np.arange(1), np.arange(1), np.ones((1, 9), dtype=np.float32))
    assert VectorMatrix(8).top_k(np.ones(8, dtype=np.float32), 3) == []


def test_metadata_matches() -> None:
    meta = {"topic": "law", "year": 2020, "draft": False, "score": 1.5}
    assert metadata_matches(meta, {"topic": "law", "year": 2020})
    assert metadata_matches(meta, {"year": "2020", "draft": "false", "score": "1.5"})
    assert not metadata_matches(meta, {"draft": 0})  # a bool is not an int
    assert not metadata_matches(meta, {"topic": "LAW"})
    assert not metadata_matches(meta, {"absent": None})
    assert metadata_matches(meta, {})


def test_fts_query_quotes_terms_and_drops_stopwords() -> None:
    assert fts_query("What is the role of p53 in apoptosis?") == '"role" OR "p53" OR "apoptosis"'
    assert fts_query('say "hi" NEAR(x) AND -y*') == '"say" OR "hi" OR "near"'
    assert fts_query("the of a") is None


def test_reciprocal_rank_fusion() -> None:
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["c", "a"]], k=60)
    assert [item for item, _ in fused] == ["a", "c", "b"]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)
