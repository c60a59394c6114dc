"""Reading files into text: plain text, Markdown, HTML (stdlib parser) and PDF (pypdf).

Every failure is typed: a missing or unreadable file is a ``DocumentReadError``, a type
we do not read or bytes that do not decode is an ``UnsupportedDocumentError``, and a
document with no text in it (an empty file, a scanned PDF) is an ``EmptyDocumentError``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from terminus.errors import (
    DocumentReadError,
    EmptyDocumentError,
    EngineUnavailableError,
    UnsupportedDocumentError,
)

KINDS = {
    ".txt": "text",
    ".text": "text",
    ".log": "text",
    ".rst": "text",
    ".csv": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".mdx": "markdown",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".pdf": "pdf",
}


@dataclass(frozen=True)
class LoadedDocument:
    text: str
    kind: str  # text | markdown | html | pdf
    pages: tuple[int, ...] | None = None  # PDFs: char offset where each page starts


def kind_of(path: Path) -> str | None:
    return KINDS.get(path.suffix.lower())


def load_file(path: str | os.PathLike[str]) -> LoadedDocument:
    """The text of a supported file, or a typed error."""
    path = Path(path)
    if not path.exists():
        raise DocumentReadError(f"{path}: no such file")
    kind = kind_of(path)
    if kind is None:
        raise UnsupportedDocumentError(
            f"{path}: unsupported document type {path.suffix or '(no extension)'!r}",
            hint="supported: " + " ".join(sorted(KINDS)),
        )
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise DocumentReadError(f"{path}: no such file") from exc
    except IsADirectoryError as exc:
        raise DocumentReadError(f"{path}: is a directory") from exc
    except OSError as exc:
        raise DocumentReadError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if kind == "pdf":
        document = _pdf(data, path)
    else:
        text = _decode(data, path)
        if kind == "html":
            text = html_to_text(text)
            kind = "markdown"  # headings became Markdown headings: chunk it as Markdown
        document = LoadedDocument(text, kind)
    check_not_empty(document.text, str(path), pdf=(kind == "pdf"))
    return document


_NON_SPACE = re.compile(r"\S")


def check_not_empty(text: str, source: str, *, pdf: bool = False) -> None:
    if _NON_SPACE.search(text) is None:  # (no .strip(): that copies a large text)
        hint = "the PDF has no text layer (scanned?); OCR it first" if pdf else None
        raise EmptyDocumentError(f"{source}: the document has no text", hint=hint)


def _decode(data: bytes, path: Path) -> str:
    if b"\x00" in data[:8192]:
        raise UnsupportedDocumentError(f"{path}: looks like a binary file, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnsupportedDocumentError(
            f"{path}: not UTF-8 text (byte {exc.start})", hint="convert it to UTF-8 first"
        ) from exc


def _pdf(data: bytes, path: Path) -> LoadedDocument:
    try:
        import pypdf
    except ImportError as exc:
        raise EngineUnavailableError(
            "reading PDFs needs pypdf", hint="pip install 'terminus[rag]'"
        ) from exc
    import io
    import logging

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # malformed files are our error
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnsupportedDocumentError(f"{path}: the PDF is encrypted")
        pages = [page.extract_text() or "" for page in reader.pages]
    except UnsupportedDocumentError:
        raise
    except Exception as exc:  # pypdf raises many types on malformed input
        raise UnsupportedDocumentError(f"{path}: not a readable PDF ({exc})") from exc
    parts: list[str] = []
    starts: list[int] = []
    offset = 0
    for page in pages:
        starts.append(offset)
        text = page.strip()
        parts.append(text)
        offset += len(text) + 2
    return LoadedDocument("\n\n".join(parts), "pdf", tuple(starts))


_BLOCK = {
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption",
    "figure", "footer", "form", "header", "hr", "li", "main", "nav", "ol", "p", "pre",
    "section", "table", "tr", "ul",
}  # fmt: skip
_LINE = {"br", "li", "tr", "dt", "dd"}  # a line break, not a paragraph break
_SKIP = {"script", "style", "noscript", "template", "head", "svg"}
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title: list[str] = []
        self._skip = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in _SKIP:
            self._skip += 1
        elif tag in _HEADINGS:
            self.parts.append("\n\n" + "#" * _HEADINGS[tag] + " ")
        elif tag in _BLOCK:
            self.parts.append("\n" if tag in _LINE else "\n\n")
        elif tag in ("td", "th"):
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in _SKIP:
            self._skip = max(0, self._skip - 1)
        elif (tag in _HEADINGS or tag in _BLOCK) and tag not in _LINE:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title.append(data)
        elif not self._skip:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Visible text of an HTML page; headings become Markdown ``#`` headings."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    text = "".join(parser.parts)
    lines = [" ".join(line.split()) for line in text.split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    title = " ".join("".join(parser.title).split())
    if title and not text.startswith("# "):
        text = f"# {title}\n\n{text}" if text else ""
    return text
