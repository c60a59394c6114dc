"""Workspaces with the fake embedding model: ingest, dedupe, search, filters, delete, reindex."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ragkit import CHAT, EMBED, EMBED_WIDE, FRUIT, GUIDE, TAX, make_pdf

from terminus.client.sync import Terminus
from terminus.engines.fake import FakeEngine
from terminus.errors import (
    DimensionMismatchError,
    DocumentNotFoundError,
    DocumentReadError,
    EmptyDocumentError,
    InvalidParameterError,
    UnsupportedDocumentError,
    WorkspaceModelMismatchError,
    WorkspaceNotFoundError,
)
from terminus.rag import (
    TextDocument,
    VectorStore,
    Workspace,
    delete_workspace,
    list_workspaces,
    open_workspace,
)


def _state(ws: Workspace) -> tuple[Any, ...]:
    """Everything a reader can observe, to compare before and after a failed write."""
    hits = [(r.chunk_id, round(r.score, 6)) for r in ws.search("apples tax install", top_k=10)]
    return ws.store.counts(), [d.id for d in ws.documents()], hits


def test_new_workspace_is_bound_to_its_model(client: Terminus, isolated_home: Path) -> None:
    with Workspace(client, "w", model=EMBED) as ws:
        assert (ws.model, ws.dimensions) == (EMBED, 64)
        assert isinstance(ws.store, VectorStore)
    assert (isolated_home / "rag" / "w" / "workspace.sqlite3").is_file()
    with Workspace(client, "w") as ws:  # no model: the bound one
        assert ws.model == EMBED
    with pytest.raises(WorkspaceModelMismatchError) as info:
        Workspace(client, "w", model=EMBED_WIDE)
    assert info.value.exit_code == 15 and "reindex" in info.value.one_line()


def test_aliases_bind_to_the_same_model(client: Terminus) -> None:
    client.catalog.register(
        client.catalog.get(EMBED).model_copy(update={"id": "fake-embed-2", "aliases": ("fe",)})
    )
    Workspace(client, "w", model="fe").close()
    with Workspace(client, "w", model="fake-embed-2") as ws:
        assert ws.model == "fake-embed-2"


def test_missing_workspace_and_bad_names(client: Terminus) -> None:
    with pytest.raises(WorkspaceNotFoundError) as info:
        open_workspace(client, "nope")
    assert info.value.exit_code == 14 and isinstance(info.value, KeyError)
    for name in ("../x", ".hidden", "a/b", "", "x" * 65):
        with pytest.raises(InvalidParameterError):
            Workspace(client, name, model=EMBED)


def test_ingest_search_and_positions(ws: Workspace) -> None:
    fruit = ws.ingest_text(FRUIT, source="fruit.txt", metadata={"topic": "food", "year": 2020})
    ws.ingest_text(TAX, source="tax.txt", metadata={"topic": "law"})
    assert fruit.status == "added" and fruit.chunks == 1
    results = ws.search("red apples orchards", top_k=2)
    best = results[0]
    assert best.source == "fruit.txt" and best.document_id == fruit.document_id
    assert best.score > results[1].score
    assert FRUIT[best.position.start : best.position.end] == best.text
    assert best.position.index == 0 and best.metadata == {"topic": "food", "year": 2020}
    assert best.label() == f"fruit.txt#0 [0:{len(FRUIT)}]"


def test_metadata_filter_is_equality_on_every_key(ws: Workspace) -> None:
    ws.ingest_text(FRUIT, source="fruit.txt", metadata={"topic": "food", "year": 2020})
    ws.ingest_text(TAX, source="tax.txt", metadata={"topic": "law", "year": 2021})
    assert {r.source for r in ws.search("apples", 5, {"topic": "law"})} == {"tax.txt"}
    assert {r.source for r in ws.search("apples", 5, {"year": "2020"})} == {"fruit.txt"}
    assert ws.search("apples", 5, {"topic": "law", "year": 2020}) == []
    assert ws.search("apples", 5, {"missing": "x"}) == []


def test_reingesting_the_same_content_is_a_no_op(ws: Workspace) -> None:
    first = ws.ingest_text(FRUIT, source="a.txt")
    before = _state(ws)
    again = ws.ingest_text(FRUIT, source="somewhere-else.txt")
    assert again.status == "skipped" and again.document_id == first.document_id
    assert _state(ws) == before
    batch = ws.ingest([TextDocument(TAX), TextDocument(TAX)])
    assert [r.status for r in batch] == ["added", "skipped"]


def test_a_changed_file_replaces_its_previous_version(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "notes.md"
    path.write_text(GUIDE)
    (old,) = ws.ingest_files([path])
    path.write_text(GUIDE + "\n## More\n\nNew section about bananas.\n")
    (new,) = ws.ingest_files([path])
    assert new.status == "replaced" and new.replaced == (old.document_id,)
    assert [d.id for d in ws.documents()] == [new.document_id]
    assert ws.search("bananas section", 1)[0].heading == "Guide > More"


def test_files_directories_and_markdown_context(ws: Workspace, tmp_path: Path) -> None:
    (tmp_path / "docs" / "sub").mkdir(parents=True)
    (tmp_path / "docs" / "guide.md").write_text(GUIDE)
    (tmp_path / "docs" / "sub" / "fruit.txt").write_text(FRUIT)
    (tmp_path / "docs" / "sub" / "page.html").write_text("<h1>Taxes</h1><p>" + TAX + "</p>")
    (tmp_path / "docs" / "paper.pdf").write_bytes(make_pdf([["Page one."], [TAX]]))
    (tmp_path / "docs" / "ignored.bin").write_bytes(b"\x00")
    results = ws.ingest_files([tmp_path / "docs"], metadata={"set": "docs"}, chunk_size=8)
    assert [Path(r.source).name for r in results] == [
        "guide.md",
        "paper.pdf",
        "fruit.txt",
        "page.html",
    ]
    hit = ws.search("pip install package", 1)[0]
    assert hit.heading == "Guide > Install" and hit.source.endswith("guide.md")
    hits = ws.search("income tax returns april", 20, {"set": "docs"})
    pages = {(Path(r.source).name, r.text.split()[0], r.position.page) for r in hits}
    assert ("paper.pdf", "Page", 1) in pages and ("paper.pdf", "Income", 2) in pages
    assert ("page.html", "Income", None) in pages


def test_bad_input_writes_nothing(ws: Workspace, tmp_path: Path) -> None:
    ws.ingest_text(FRUIT)
    before = _state(ws)
    good = tmp_path / "good.txt"
    good.write_text(TAX)
    (tmp_path / "bad.xyz").write_text("x")
    (tmp_path / "empty.txt").write_text("\n")
    (tmp_path / "scan.pdf").write_bytes(make_pdf([[]]))
    with pytest.raises(UnsupportedDocumentError):
        ws.ingest_files([good, tmp_path / "bad.xyz"])
    with pytest.raises(EmptyDocumentError):
        ws.ingest_files([good, tmp_path / "empty.txt"])
    with pytest.raises(EmptyDocumentError):
        ws.ingest_files([good, tmp_path / "scan.pdf"])
    with pytest.raises(EmptyDocumentError):
        ws.ingest_text("   ")
    with pytest.raises(DocumentReadError):
        ws.ingest_files([good, tmp_path / "missing"])
    (tmp_path / "empty-dir").mkdir()
    with pytest.raises(InvalidParameterError, match="no files"):
        ws.ingest_files([tmp_path / "empty-dir"])
    assert _state(ws) == before


class FailingClient:
    """Delegates to a client but fails the ``fail_at``-th embed call."""

    def __init__(self, client: Terminus, fail_at: int) -> None:
        self.client, self.home, self.catalog = client, client.home, client.catalog
        self.calls, self.fail_at = 0, fail_at

    def embed(self, texts: Any, **kw: Any) -> Any:
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("embedding backend went away")
        return self.client.embed(texts, **kw)

    def completion(self, messages: Any, **kw: Any) -> Any:
        return self.client.completion(messages, **kw)


def test_an_error_mid_document_rolls_the_document_back(client: Terminus) -> None:
    Workspace(client, "w", model=EMBED).close()
    failing = FailingClient(client, fail_at=3)
    with Workspace(failing, "w", batch_size=4) as ws:
        ws.ingest_text(FRUIT)  # embed call 1
        before = _state(ws)  # call 2 (the query)
        big = " ".join(f"Sentence {i} is about apples." for i in range(40))
        with pytest.raises(RuntimeError, match="went away"):
            ws.ingest_text(big, chunking="tokens", chunk_size=8, overlap=0)  # calls 3..
        assert _state(ws) == before
    with Workspace(client, "w") as fresh:  # and on disk
        assert fresh.store.counts() == before[0]


def test_wrong_dimensions_are_typed_errors(ws: Workspace) -> None:
    ws.ingest_text(FRUIT)
    before = _state(ws)
    with pytest.raises(DimensionMismatchError, match="32 dimensions; this workspace stores 64"):
        ws.search_vector(np.ones(32, dtype=np.float32))
    record = ws.store.document_records().__next__()
    bad = record.__class__(**{**record.__dict__, "id": "x" * 16, "content_hash": "f" * 64})
    with pytest.raises(DimensionMismatchError):
        ws.store.add_document(bad, [([object()], np.ones((1, 10), dtype=np.float32))])  # type: ignore[list-item]
    assert _state(ws) == before


def test_delete_documents(ws: Workspace) -> None:
    fruit = ws.ingest_text(FRUIT, source="fruit.txt")
    tax = ws.ingest_text(TAX, source="tax.txt")
    assert ws.delete_document(fruit.document_id[:6]) == fruit.document_id  # a prefix
    assert [d.id for d in ws.documents()] == [tax.document_id]
    assert {r.source for r in ws.search("apples", 5)} == {"tax.txt"}
    assert ws.delete_document("tax.txt") == tax.document_id  # by source
    assert ws.search("apples") == []
    with pytest.raises(DocumentNotFoundError):
        ws.delete_document("tax.txt")
    assert ws.ingest_text(FRUIT, source="fruit.txt").status == "added"  # not a duplicate now


def test_reindex_with_a_new_model_and_dimension(ws: Workspace, client: Terminus) -> None:
    ws.ingest_text(FRUIT, source="fruit.txt")
    ws.ingest_text(GUIDE, source="guide.md", kind="markdown")
    info = ws.reindex(EMBED_WIDE)
    assert (info.model, info.dimensions, info.documents) == (EMBED_WIDE, 96, 2)
    assert ws.search("apples orchards", 1)[0].source == "fruit.txt"
    ws.close()
    with pytest.raises(WorkspaceModelMismatchError):
        Workspace(client, "notes", model=EMBED)
    with Workspace(client, "notes", model=EMBED_WIDE) as again:
        assert again.search("pip install", 1)[0].heading == "Guide > Install"
        info = again.reindex(chunking="tokens", chunk_size=8, overlap=0)
        assert info.chunks > 4 and info.model == EMBED_WIDE
        assert all(r.heading == "" for r in again.search("install", 10))


def test_list_and_delete_workspaces(client: Terminus, isolated_home: Path) -> None:
    assert list_workspaces(client) == []
    with Workspace(client, "b", model=EMBED) as ws:
        ws.ingest_text(FRUIT)
    Workspace(client, "a", model=EMBED_WIDE).close()
    infos = list_workspaces(isolated_home)
    assert [(i.name, i.model, i.dimensions, i.documents) for i in infos] == [
        ("a", EMBED_WIDE, 96, 0),
        ("b", EMBED, 64, 1),
    ]
    delete_workspace(client, "b")
    assert [i.name for i in list_workspaces(client)] == ["a"]
    assert not any(p.name.startswith(".b") for p in (isolated_home / "rag").iterdir())
    with pytest.raises(WorkspaceNotFoundError):
        delete_workspace(client, "b")


def test_two_handles_see_each_others_writes(client: Terminus) -> None:
    with Workspace(client, "w", model=EMBED) as one, Workspace(client, "w") as two:
        one.ingest_text(FRUIT, source="fruit.txt")
        assert two.search("apples", 1)[0].source == "fruit.txt"
        two.ingest_text(TAX, source="tax.txt")
        two.delete_document("fruit.txt")
        assert {r.source for r in one.search("apples", 5)} == {"tax.txt"}


def test_hybrid_search_fuses_keywords(ws: Workspace) -> None:
    ws.ingest_text(FRUIT, source="fruit.txt")
    ws.ingest_text(TAX, source="tax.txt")
    hits = ws.search("april returns", 2, hybrid=True)
    assert hits[0].source == "tax.txt"
    assert 0 < hits[0].score <= 2 / 61  # an RRF score
    assert ws.store.keyword_search("the of and", 5) == []  # only stopwords
    assert ws.store.keyword_search('"quoted" OR (weird) NEAR', 5) == []  # no FTS syntax leaks


def test_top_k_must_be_positive(ws: Workspace) -> None:
    with pytest.raises(InvalidParameterError):
        ws.search("x", 0)


def test_ask_streams_and_cites(ws: Workspace) -> None:
    ws.ingest_text(FRUIT, source="fruit.txt")
    ws.ingest_text(TAX, source="tax.txt")
    answer = ws.ask("What color are apples?", CHAT, top_k=2)
    events = list(answer)
    assert events[-1].type == "done" and events[-1].stop_reason == "stop"
    assert "".join(e.text for e in events if e.type == "content") == "Apples are red [1]."
    # "red" is in the fruit sentences the model read, not in the question: matched there
    assert [(c.result.source, c.how) for c in answer.citations] == [("fruit.txt", "matched")]
    assert answer.sources[0].result.source == "fruit.txt"
    request = FakeEngine.calls[-1]  # what the model saw
    assert request.messages[0].role == "system" and "one short sentence" in (
        request.messages[0].content or ""
    )
    user = request.messages[-1].content or ""
    assert "- Red apples grow on trees in orchards." in user  # one sentence a line
    assert "[1]" not in user  # unnumbered: the 0.5B model answered "[1]" alone
    assert user.endswith("Question: What color are apples?")
    # No example answer for a small model to copy (it used to echo "Cats purr [1].")
    assert "for example" not in user.lower() and len(request.messages) == 2


def test_answer_result_without_iterating_and_context_budget(ws: Workspace) -> None:
    ws.ingest_text(" ".join(f"apple{i}" for i in range(300)), source="long.txt")
    ws.ingest_text(FRUIT, source="fruit.txt")
    answer = ws.ask("apples", CHAT, top_k=2, context_words=50, focus_words=None)
    assert answer.text == "Apples are red [1]."
    assert [c.result.source for c in answer.sources] == ["fruit.txt"]  # 300 words: no room
    user = FakeEngine.calls[-1].messages[-1].content or ""
    assert f"Sources:\n- {' '.join(FRUIT.split())}\n\nQuestion: apples" in user  # whole chunk
    assert [c.result.source for c in answer.citations] == ["fruit.txt"]


def test_ask_with_an_unknown_index_mode_is_refused(client: Terminus) -> None:
    with pytest.raises(InvalidParameterError):
        Workspace(client, "other", model=EMBED, index="fast")


def test_content_added_by_someone_else_meanwhile_is_skipped(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws.ingest_text(FRUIT)
    before = _state(ws)
    monkeypatch.setattr(ws.store, "find_by_hash", lambda content_hash: None)  # a stale check
    result = ws.ingest_text(FRUIT, source="again.txt")
    assert (result.status, result.chunks) == ("skipped", 0)
    assert _state(ws) == before


class RecordingClient(FailingClient):
    def __init__(self, client: Terminus) -> None:
        super().__init__(client, fail_at=0)
        self.sizes: list[int] = []

    def embed(self, texts: Any, **kw: Any) -> Any:
        self.sizes.append(1 if isinstance(texts, str) else len(texts))
        return super().embed(texts, **kw)


def test_embedding_batches_run_across_documents(client: Terminus) -> None:
    Workspace(client, "w", model=EMBED).close()
    recording = RecordingClient(client)
    with Workspace(recording, "w", batch_size=4) as ws:
        documents = [
            TextDocument(f"Document {i} is about topic{i} alone. " * (i % 3 + 1), source=f"d{i}")
            for i in range(12)
        ]
        documents.insert(5, TextDocument("big " * 80 + "topicbig", source="big"))
        results = ws.ingest(documents, chunking="tokens", chunk_size=8, overlap=0)
        assert recording.sizes[:-1] == [4] * (len(recording.sizes) - 1)  # exact batches
        assert sum(recording.sizes) == sum(r.chunks for r in results) == ws.info().chunks
        assert [r.source for r in results] == [d.source for d in documents]
        db = sqlite3.connect(ws.store.path)  # type: ignore[attr-defined]
        rows = db.execute("SELECT text, vector FROM chunks ORDER BY id").fetchall()
        db.close()
        expected = client.embed([text for text, _ in rows], model=EMBED).vectors
        stored = np.stack([np.frombuffer(blob, dtype=np.float32) for _, blob in rows])
        assert np.array_equal(stored, expected)  # every vector went to its own chunk
