"""The approximate (IVF) index: recall against exact search, saved with the workspace,
never loaded half-written or for another snapshot, and exact search without faiss."""

from __future__ import annotations

import numpy as np
import pytest
from ragkit import EMBED

from terminus.client.sync import Terminus
from terminus.errors import EngineUnavailableError
from terminus.rag import TextDocument, Workspace, ann
from terminus.rag.ann import IvfIndex, cells_for, probes_for, saved_files
from terminus.rag.matrix import VectorMatrix

faiss = pytest.importorskip("faiss")


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def clustered(n: int, seed: int, d: int = 64, topics: int = 50) -> np.ndarray:
    """Vectors around random topic centres, as embeddings of texts on a few subjects are."""
    centres = np.random.default_rng(0).standard_normal((topics, d))
    rng = np.random.default_rng(seed)
    return unit(centres[rng.integers(0, topics, n)] + 0.6 * rng.standard_normal((n, d)))


def recall(index: IvfIndex, vectors: np.ndarray, queries: np.ndarray, k: int = 10) -> float:
    matrix = VectorMatrix(vectors.shape[1])
    matrix.append(np.arange(len(vectors)), np.zeros(len(vectors), np.int64), vectors)
    found = 0
    for q in queries:
        exact = {i for i, _ in matrix.top_k(q, k)}
        found += len(exact & {i for i, _ in index.search(q, k)})
    return found / (k * len(queries))


def test_recall_at_10_against_exact_search() -> None:
    vectors, queries = clustered(4000, 1), clustered(100, 2)
    index = IvfIndex.build(np.arange(4000), vectors)
    assert index.count == 4000 and 1 < index.probes < cells_for(4000)
    assert recall(index, vectors, queries) >= 0.95
    # uniform random vectors are IVF's worst case; scanning every cell is exact
    noise = unit(np.random.default_rng(3).standard_normal((3000, 64)))
    index = IvfIndex.build(np.arange(3000), noise)
    index.probes = cells_for(3000)
    assert recall(index, noise, unit(np.random.default_rng(4).standard_normal((50, 64)))) == 1.0


def test_scores_are_exact_inner_products_and_patches_apply() -> None:
    vectors = clustered(2000, 5)
    index = IvfIndex.build(np.arange(10, 2010), vectors)
    q = vectors[7]
    (best, score), *_ = index.search(q, 3)
    assert best == 17 and score == pytest.approx(1.0, abs=1e-5)
    index.remove(np.array([17]))
    assert 17 not in [i for i, _ in index.search(q, 3)]
    index.add(np.array([99999]), q[None])
    assert index.search(q, 1)[0][0] == 99999 and index.count == 2000


def test_probes_grow_with_the_cells() -> None:
    assert cells_for(100) == 2 and cells_for(1_000_000) == 4000
    assert probes_for(4000) == 80 and probes_for(100) == 32 and probes_for(8) == 8


def _texts(n: int, offset: int = 0) -> list[TextDocument]:
    words = [f"topic{i % 7} item{i + offset} note{(i * 13) % 31}" for i in range(n)]
    return [TextDocument(w, source=f"d{i + offset}.txt") for i, w in enumerate(words)]


def test_saved_with_the_workspace_and_reloaded_not_rebuilt(
    client: Terminus, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Workspace(client, "big", model=EMBED, index="ann") as ws:
        ws.ingest(_texts(300))
        assert ws.build_index()
        directory = ws.path / "ann"
        [first] = saved_files(directory)
        hits = [h.chunk_id for h in ws.search("topic3 item45", 5)]
        ws.ingest(_texts(20, offset=1000))  # patches the index in place
        assert "d1005.txt" in [h.source for h in ws.search("topic5 item1005 note3", 3)]
    [second] = saved_files(directory)  # saved again on close, under the new snapshot
    assert second != first and not first.exists()
    assert not list(directory.glob(".*partial"))

    def no_build(*args: object, **kwargs: object) -> IvfIndex:
        raise AssertionError("rebuilt instead of loaded")

    monkeypatch.setattr(IvfIndex, "build", classmethod(no_build))
    with Workspace(client, "big", model=EMBED, index="ann") as ws:
        assert ws.build_index()
        assert [h.chunk_id for h in ws.search("topic3 item45", 5)] == hits
        assert "d1005.txt" in [h.source for h in ws.search("topic5 item1005 note3", 3)]


def test_a_damaged_or_stale_file_is_never_used(client: Terminus) -> None:
    with Workspace(client, "big", model=EMBED, index="ann") as ws:
        ws.ingest(_texts(200))
        assert ws.build_index()
        [saved] = saved_files(ws.path / "ann")
        expected = [h.chunk_id for h in ws.search("topic2 item9", 5)]
    saved.write_bytes(saved.read_bytes()[:1000])  # cut short, under its final name
    stale = saved.with_name(saved.name.replace("-g", "-g9").replace("-n200", "-n7"))
    stale.write_bytes(b"not an index")
    with Workspace(client, "big", model=EMBED, index="ann") as ws:
        assert ws.build_index()  # the damaged file is dropped and the index rebuilt
        assert [h.chunk_id for h in ws.search("topic2 item9", 5)] == expected
    assert [p.name for p in saved_files(ws.path / "ann")] == [saved.name]


def test_without_faiss_auto_stays_exact_and_ann_is_refused(
    client: Terminus, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ann, "available", lambda: False)
    monkeypatch.setattr(ann, "ANN_MIN_CHUNKS", 1)
    with pytest.raises(EngineUnavailableError, match="faiss"):
        Workspace(client, "big", model=EMBED, index="ann")
    with Workspace(client, "big", model=EMBED) as ws:
        ws.ingest(_texts(50))
        assert not ws.build_index()
        assert ws.search("topic1 item8", 1)[0].source == "d8.txt"
        assert not (ws.path / "ann").exists()


def test_auto_picks_the_index_by_size(client: Terminus, monkeypatch: pytest.MonkeyPatch) -> None:
    assert not ann.wanted("auto", ann.ANN_MIN_CHUNKS - 1)
    assert ann.wanted("auto", ann.ANN_MIN_CHUNKS) and ann.wanted("ann", 10)
    assert not ann.wanted("exact", 10**7) and not ann.wanted("ann", 0)
    monkeypatch.setattr(ann, "ANN_MIN_CHUNKS", 100)
    with Workspace(client, "big", model=EMBED) as ws:
        ws.ingest(_texts(99))
        assert not ws.build_index()
    with Workspace(client, "big", model=EMBED) as ws:
        ws.ingest(_texts(1, offset=500))
        assert ws.build_index()  # 100 chunks now
    with Workspace(client, "big", model=EMBED, index="exact") as ws:
        assert not ws.build_index()
