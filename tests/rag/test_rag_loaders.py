"""Reading files: every supported type, and a typed error for every bad one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ragkit import make_pdf

from terminus.errors import DocumentReadError, EmptyDocumentError, UnsupportedDocumentError
from terminus.rag.loaders import html_to_text, load_file


def test_text_and_markdown(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("\ufeffplain text", encoding="utf-8")
    (tmp_path / "b.md").write_text("# Title\n\nbody", encoding="utf-8")
    assert load_file(tmp_path / "a.txt").text == "plain text"  # BOM dropped
    doc = load_file(tmp_path / "b.md")
    assert (doc.kind, doc.text) == ("markdown", "# Title\n\nbody")


def test_html_keeps_visible_text_and_turns_headings_into_markdown(tmp_path: Path) -> None:
    page = """<html><head><title>Page T</title><style>p {color: red}</style>
    <script>var hidden = 1;</script></head><body>
    <h1>Main</h1><p>First &amp; second.</p><h2>Sub</h2><ul><li>one</li><li>two</li></ul>
    </body></html>"""
    (tmp_path / "p.html").write_text(page, encoding="utf-8")
    doc = load_file(tmp_path / "p.html")
    assert doc.kind == "markdown"
    assert "# Main" in doc.text and "## Sub" in doc.text and "First & second." in doc.text
    assert "hidden" not in doc.text and "color" not in doc.text
    assert "one\ntwo" in doc.text
    assert html_to_text("<title>Only title</title>") == ""


def test_pdf_pages_are_text_with_page_offsets(tmp_path: Path) -> None:
    path = tmp_path / "d.pdf"
    path.write_bytes(make_pdf([["Page one says hello."], ["Page two (second) says bye."]]))
    doc = load_file(path)
    assert doc.kind == "pdf"
    assert doc.text == "Page one says hello.\n\nPage two (second) says bye."
    assert doc.pages == (0, len("Page one says hello.") + 2)


def test_unsupported_missing_and_directory(tmp_path: Path) -> None:
    (tmp_path / "x.docx").write_bytes(b"PK\x03\x04")
    with pytest.raises(UnsupportedDocumentError, match="unsupported document type '.docx'"):
        load_file(tmp_path / "x.docx")
    with pytest.raises(DocumentReadError, match="no such file"):
        load_file(tmp_path / "missing.txt")
    (tmp_path / "dir.md").mkdir()
    with pytest.raises(DocumentReadError, match="directory"):
        load_file(tmp_path / "dir.md")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "secret.txt"
    path.write_text("x")
    path.chmod(0)
    with pytest.raises(DocumentReadError, match="cannot read"):
        load_file(path)


def test_binary_and_non_utf8_text(tmp_path: Path) -> None:
    (tmp_path / "bin.txt").write_bytes(b"\x00\x01\x02binary")
    with pytest.raises(UnsupportedDocumentError, match="binary"):
        load_file(tmp_path / "bin.txt")
    (tmp_path / "latin.txt").write_bytes("café".encode("latin-1"))
    with pytest.raises(UnsupportedDocumentError, match="not UTF-8"):
        load_file(tmp_path / "latin.txt")


def test_empty_documents(tmp_path: Path) -> None:
    (tmp_path / "empty.md").write_text("  \n\n ")
    with pytest.raises(EmptyDocumentError):
        load_file(tmp_path / "empty.md")
    (tmp_path / "scan.pdf").write_bytes(make_pdf([[], []]))
    with pytest.raises(EmptyDocumentError) as info:
        load_file(tmp_path / "scan.pdf")
    assert "text layer" in info.value.one_line()


def test_corrupt_pdf(tmp_path: Path) -> None:
    (tmp_path / "bad.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf")
    with pytest.raises(UnsupportedDocumentError, match="not a readable PDF"):
        load_file(tmp_path / "bad.pdf")
