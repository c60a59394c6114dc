"""``terminus rag`` as a user drives it (fake models saved as user cards)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from ragkit import CHAT, EMBED, EMBED_WIDE, FRUIT, GUIDE, TAX, make_pdf

from terminus.cli.main import cli


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def docs(tmp_path: Path, cards_saved: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "fruit.txt").write_text(FRUIT)
    (folder / "tax.txt").write_text(TAX)
    (folder / "guide.md").write_text(GUIDE)
    return folder


def test_ingest_search_ls_and_rm(docs: Path) -> None:
    code, out, err = invoke("rag", "ingest", "kb", str(docs), "--model", EMBED, "--meta", "team=a")
    assert code == 0, err
    assert out.count("added") == 3 and "kb: 3 documents" in err
    code, out, _ = invoke("rag", "ingest", "kb", str(docs / "tax.txt"))
    assert code == 0 and out.startswith("skipped")

    code, out, _ = invoke("rag", "search", "kb", "pip install the package", "-k", "1")
    assert code == 0
    assert out.startswith("1. ") and "guide.md#" in out and "(Guide > Install)" in out

    code, out, _ = invoke(
        "rag", "search", "kb", "apples", "--filter", "team=a", "--json", "-k", "2"
    )
    results = json.loads(out)
    assert code == 0 and len(results) == 2
    assert set(results[0]) >= {"score", "source", "text", "position", "metadata", "document_id"}
    assert results[0]["metadata"] == {"team": "a"} and results[0]["source"].endswith("fruit.txt")
    code, out, err = invoke("rag", "search", "kb", "apples", "--filter", "team=b")
    assert code == 0 and out == "" and "no results" in err

    code, out, _ = invoke("rag", "ls")
    assert code == 0 and "kb" in out and f"{EMBED} (64d)" in out
    code, out, _ = invoke("rag", "ls", "kb", "--json")
    documents = json.loads(out)
    assert len(documents) == 3
    tax = next(d for d in documents if d["source"].endswith("tax.txt"))

    code, out, _ = invoke("rag", "rm", "kb", "--doc", tax["id"][:8])
    assert code == 0 and out.strip() == f"deleted {tax['id']}"
    code, out, _ = invoke("rag", "ls", "kb")
    assert "tax.txt" not in out and "fruit.txt" in out and "team=a" in out
    code, out, _ = invoke("rag", "rm", "kb")
    assert code == 0 and "deleted workspace kb" in out
    code, _, err = invoke("rag", "ls")
    assert "no workspaces" in err


def test_ask_streams_then_lists_cited_sources(docs: Path) -> None:
    assert invoke("rag", "ingest", "kb", str(docs), "--model", EMBED)[0] == 0
    code, out, err = invoke("rag", "ask", "kb", "What color are apples?", "-m", CHAT, "-k", "2")
    assert code == 0, err
    answer, _, sources = out.partition("\n\nSources (matched to the answer):\n")
    assert answer == "Apples are red [1]."
    assert sources.startswith("[1] ") and "fruit.txt#0" in sources
    code, out, _ = invoke("rag", "ask", "kb", "apples?", "-m", CHAT, "--json")
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[-2]["type"] == "done" and lines[-1]["type"] == "sources"
    assert lines[-1]["cited"] == [1] and lines[-1]["sources"][0]["number"] == 1
    assert lines[-1]["cited_how"] == "matched"


def test_reindex_changes_the_model(docs: Path) -> None:
    assert invoke("rag", "ingest", "kb", str(docs), "--model", EMBED)[0] == 0
    code, _, err = invoke("rag", "ingest", "kb", str(docs), "--model", EMBED_WIDE)
    assert code == 15 and err.startswith("error: workspace 'kb' is bound to fake-embed")
    code, out, err = invoke("rag", "reindex", "kb", "--model", EMBED_WIDE, "--chunking", "tokens")
    assert code == 0, err
    assert f"({EMBED_WIDE})" in out
    assert invoke("rag", "search", "kb", "apples")[0] == 0


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["rag", "search", "missing", "q"], 14, "error: no workspace named 'missing'"),
        (["rag", "ask", "missing", "q"], 14, "error: no workspace named 'missing'"),
        (["rag", "rm", "missing"], 14, "error: no workspace named 'missing'"),
        (["rag", "rm", "kb", "--doc", "nope"], 20, "error: no document 'nope'"),
        (["rag", "ingest", "kb", "{docs}/x.docx"], 16, "unsupported document type '.docx'"),
        (["rag", "ingest", "kb", "{docs}/nothere.txt"], 19, "no such file"),
        (["rag", "ingest", "kb", "{docs}/empty.txt"], 17, "the document has no text"),
        (["rag", "ingest", "kb", "{docs}/scan.pdf"], 17, "no text layer"),
        (["rag", "ingest", "kb", "{docs}", "--chunk-size", "3"], 9, "at least 8 words"),
        (["rag", "ingest", "bad/name", "{docs}"], 9, "invalid workspace name"),
        (["rag", "ingest", "kb", "{docs}", "--meta", "novalue"], 2, "KEY=VALUE"),
        (["rag", "ingest", "kb", "{docs}", "--model", "nope"], 3, "unknown model"),
    ],
)
def test_errors_are_one_line_with_typed_exit_codes(
    docs: Path, args: list[str], code: int, message: str
) -> None:
    assert invoke("rag", "ingest", "kb", str(docs / "fruit.txt"), "--model", EMBED)[0] == 0
    (docs / "x.docx").write_bytes(b"PK")
    (docs / "empty.txt").write_text(" ")
    (docs / "scan.pdf").write_bytes(make_pdf([[]]))
    got, out, err = invoke(*[a.replace("{docs}", str(docs)) for a in args])
    assert got == code, err
    assert message in err
    if code != 2:  # click's own usage errors print a usage block
        assert len(err.strip().splitlines()) == 1
    _, listing, _ = invoke("rag", "ls", "kb")
    assert listing.count("\n") == 2  # header + the one document: nothing half-written


def test_index_builds_and_saves_the_approximate_index(docs: Path, isolated_home: Path) -> None:
    pytest.importorskip("faiss")
    assert invoke("rag", "ingest", "kb", str(docs), "--model", EMBED)[0] == 0
    code, out, err = invoke("rag", "index", "kb")
    assert code == 0, err
    assert out.startswith("kb: indexed ") and " chunks in " in out
    assert len(list((isolated_home / "rag" / "kb" / "ann").glob("ivf-*.faiss"))) == 1
    code, _, err = invoke("rag", "index", "nosuch")
    assert code == 14 and "no workspace named 'nosuch'" in err
