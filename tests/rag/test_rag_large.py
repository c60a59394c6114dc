"""Large documents: chunked as a stream in bounded memory, with progress, one transaction each."""

from __future__ import annotations

import random
import tracemalloc
from pathlib import Path

import pytest
from ragkit import EMBED

from terminus.client.sync import Terminus
from terminus.errors import DocumentReadError
from terminus.rag import Workspace
from terminus.rag.chunking import make_chunker
from terminus.rag.ingest import LARGE_TEXT, ChunkingOptions, prepare_file

WORDS = [
    "apples",
    "pears",
    "tax",
    "install",
    "guide",
    "model",
    "chunk",
    "window",
    "red",
    "green",
    "river",
    "stone",
]


def _lines(path: Path, characters: int, seed: int = 1) -> Path:
    """Log-like text: no sentence punctuation, no blank line (word windows all along)."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as fh:
        written = 0
        while written < characters:
            line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 15))) + "\n"
            fh.write(line)
            written += len(line)
    return path


def _prose(characters: int, seed: int = 2) -> str:
    rng = random.Random(seed)
    parts: list[str] = []
    size = 0
    while size < characters:
        sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 30))).capitalize()
        parts.append(sentence + (".\n\n" if rng.random() < 0.2 else ". "))
        size += len(parts[-1])
    return "".join(parts)


@pytest.mark.parametrize("strategy", ["tokens", "sentences", "markdown"])
def test_streamed_chunks_equal_the_listed_ones(strategy: str) -> None:
    text = _prose(60_000)
    text = "# Title\n\nIntro.\n\n## Part\n" + text + "\n\nTitle two\n=========\n" + text[:5000]
    chunker = make_chunker(strategy, kind="markdown", size=40, overlap=8)
    listed = chunker.chunk(text)
    assert list(chunker.iter_chunks(text)) == listed
    assert all(c.text == text[c.start : c.end] for c in listed)
    assert [c.index for c in listed] == list(range(len(listed)))


def test_a_large_file_is_prepared_in_bounded_memory(tmp_path: Path) -> None:
    """A file of one endless "sentence" used to be cut through a list of every word's
    span and held as a list of chunks (~20x the file in RAM); now reading, hashing and
    counting its chunks peaks within a few copies of its text, and none is kept."""
    big = _lines(tmp_path / "big.txt", 2_000_000)
    size = big.stat().st_size
    tracemalloc.start()
    try:
        prepared = prepare_file(big, {}, ChunkingOptions())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert prepared.count > 400
    assert prepared.record.text == ""  # read again when written
    assert peak < 4 * size, f"peak {peak / 1e6:.0f} MB for a {size / 1e6:.0f} MB file"


def test_a_large_file_is_ingested_whole(client: Terminus, tmp_path: Path) -> None:
    big = _lines(tmp_path / "big.txt", LARGE_TEXT + 200_000)
    with Workspace(client, "w", model=EMBED, batch_size=64) as ws:
        [result] = ws.ingest_files([big])
        assert result.status == "added"
        assert result.chunks == len(make_chunker("sentences").chunk(big.read_text()))
        assert ws.info().chunks == result.chunks
        [document] = ws.documents()
        assert document.characters == len(big.read_text())
        assert ws.search("apples tax", top_k=1)  # the snapshot loads from the file
        # The text was stored in slices; a reindex reads it back whole.
        [record] = ws.store.document_records()  # type: ignore[attr-defined]
        assert record.text == big.read_text()
        info = ws.reindex(chunk_size=80)
        assert info.chunks > result.chunks


def test_progress_callback_reports_chunking_then_embedding(
    client: Terminus, tmp_path: Path
) -> None:
    big = _lines(tmp_path / "big.txt", LARGE_TEXT + 50_000)
    calls: list[tuple[str, int, int | None]] = []
    with Workspace(client, "w", model=EMBED) as ws:
        [result] = ws.ingest_files([big], progress=lambda *call: calls.append(call))
    stages = list(dict.fromkeys(stage for stage, _, _ in calls))
    assert stages == ["chunking big.txt", "embedding into w"]
    chunking = [(done, total) for stage, done, total in calls if stage == stages[0]]
    assert chunking[-1][1] == len(big.read_text()) and chunking[-1][0] > 0
    embedding = [(done, total) for stage, done, total in calls if stage == stages[1]]
    assert embedding[-1] == (result.chunks, result.chunks)
    assert [done for done, _ in embedding] == sorted(done for done, _ in embedding)


def test_a_large_file_that_changes_before_its_turn_is_refused(
    client: Terminus, tmp_path: Path
) -> None:
    first = _lines(tmp_path / "first.txt", LARGE_TEXT + 10, seed=3)
    second = _lines(tmp_path / "second.txt", LARGE_TEXT + 10, seed=4)

    def edit_second(stage: str, done: int, total: int | None) -> None:
        if stage.startswith("embedding") and done > 0:
            second.write_text("rewritten while the first file was being written\n")

    with Workspace(client, "w", model=EMBED) as ws:
        with pytest.raises(DocumentReadError, match="changed while it was being ingested"):
            ws.ingest_files([first, second], progress=edit_second)
        # Each document is its own transaction: the first is whole, the second absent.
        [document] = ws.documents()
        assert document.source == str(first.resolve())
        assert document.characters == len(first.read_text())
        assert ws.info().chunks == document.chunks


def test_large_and_small_documents_mix(client: Terminus, tmp_path: Path) -> None:
    small = tmp_path / "small.txt"
    small.write_text("Apples are red. Pears are green.\n")
    big = _lines(tmp_path / "big.txt", LARGE_TEXT + 1000)
    with Workspace(client, "w", model=EMBED, batch_size=8) as ws:
        results = ws.ingest_files([small, big, small.with_name("s2.txt")], progress=False)
        assert [r.status for r in results] == ["added", "added", "added"]
        assert sum(r.chunks for r in results) == ws.info().chunks


@pytest.fixture(autouse=True)
def _second_small(tmp_path: Path) -> None:
    (tmp_path / "s2.txt").write_text("The river stone is grey.\n")


def test_cli_logs_progress_lines_when_stderr_is_not_a_terminal(
    cards_saved: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from terminus.cli import rag as rag_cli
    from terminus.cli.main import cli

    monkeypatch.setattr(rag_cli._LogLines, "first_s", 0.0)  # long work, as far as it knows
    monkeypatch.setattr(rag_cli._LogLines, "every_s", 0.0)
    big = _lines(tmp_path / "big.txt", LARGE_TEXT + 20_000)
    result = CliRunner().invoke(cli, ["rag", "ingest", "kb", str(big), "--model", EMBED])
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert any(line.startswith("chunking big.txt: ") and "%" in line for line in lines)
    last = [line for line in lines if line.startswith("embedding into kb: ")][-1]
    chunks = int(result.stdout.split("(")[-1].split()[0])
    assert last.startswith(f"embedding into kb: {chunks:,} of {chunks:,} (100 %)")


def test_a_large_text_is_stored_apart_and_deleted_with_its_document(
    client: Terminus, tmp_path: Path
) -> None:
    import sqlite3

    big = _lines(tmp_path / "big.txt", LARGE_TEXT + 5000, seed=8)
    small = tmp_path / "small.txt"
    small.write_text("Apples are red.\n")
    with Workspace(client, "w", model=EMBED) as ws:
        ws.ingest_files([big, small])
        path = ws.path / "workspace.sqlite3"
        db = sqlite3.connect(path)
        rows = db.execute(
            "SELECT d.source, length(d.text), t.characters, length(t.text)"
            " FROM documents d LEFT JOIN document_texts t ON t.doc_seq = d.seq ORDER BY d.seq"
        ).fetchall()
        text = big.read_text()
        assert rows[0] == (str(big.resolve()), 0, len(text), len(text.encode()))
        assert rows[1] == (str(small.resolve()), len("Apples are red.\n"), None, None)
        assert {d.characters for d in ws.documents()} == {len(text), 16}
        ws.delete_document(str(big.resolve()))
        assert db.execute("SELECT count(*) FROM document_texts").fetchone() == (0,)
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        db.close()


def test_a_workspace_made_before_the_large_text_table_gets_it_when_needed(
    client: Terminus, tmp_path: Path
) -> None:
    import sqlite3

    small = tmp_path / "small.txt"
    small.write_text("Apples are red.\n")
    with Workspace(client, "w", model=EMBED) as ws:
        ws.ingest_files([small])
        path = ws.path / "workspace.sqlite3"
    db = sqlite3.connect(path)
    db.execute("DROP TABLE document_texts")  # as an older Terminus made it
    db.commit()
    db.close()
    with Workspace(client, "w") as ws:
        assert [d.characters for d in ws.documents()] == [16]
        big = _lines(tmp_path / "big.txt", LARGE_TEXT + 5000, seed=9)
        ws.ingest_files([big])
        assert sorted(d.characters for d in ws.documents()) == [16, len(big.read_text())]
