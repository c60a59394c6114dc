"""Helpers for the RAG tests: fake model cards, saved cards for CLI runs, hand-made PDFs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fakecards import fake_card as shared_fake_card

from terminus.models.card import ModelCard
from terminus.models.catalog import Catalog

EMBED = "fake-embed"
EMBED_WIDE = "fake-embed-wide"
CHAT = "fake-chat"


def fake_card(
    directory: Path, card_id: str, *, capability: str = "chat", **defaults: Any
) -> ModelCard:
    """A fake card saved-as-user-card style (the CLI tests write it to the home)."""
    return shared_fake_card(directory, card_id, capability=capability, user_added=True, **defaults)


def rag_cards(directory: Path, reply: str = "Apples are red [1].") -> list[ModelCard]:
    """A 64-d and a 96-d fake embedding model, and a chat model with a scripted reply."""
    return [
        fake_card(directory, EMBED, capability="embed", dimensions=64),
        fake_card(directory, EMBED_WIDE, capability="embed", dimensions=96),
        fake_card(directory, CHAT, context_length=100_000, replies=[reply]),
    ]


def save_cards(home: Path, cards: list[ModelCard]) -> None:
    """Save cards as user cards, so a new client (a CLI run, a subprocess) sees them."""
    catalog = Catalog(home / "cards")
    for card in cards:
        catalog.save_user_card(card)


def _pdf_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(pages: list[list[str]]) -> bytes:
    """A valid PDF whose pages show the given lines in Helvetica (no lines: no text)."""
    count = len(pages)
    page_ids = [4 + 2 * i for i in range(count)]
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: (
            "<< /Type /Pages /Kids ["
            + " ".join(f"{i} 0 R" for i in page_ids)
            + f"] /Count {count} >>"
        ).encode(),
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    }
    for page_id, lines in zip(page_ids, pages, strict=True):
        shown = " T* ".join(f"({_pdf_escape(line)}) Tj" for line in lines)
        content = f"BT /F1 12 Tf 14 TL 72 720 Td {shown} ET".encode() if lines else b""
        objects[page_id] = (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {page_id + 1} 0 R >>"
        ).encode()
        objects[page_id + 1] = (
            f"<< /Length {len(content)} >>\nstream\n".encode() + content + b"\nendstream"
        )
    out = bytearray(b"%PDF-1.4\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += f"{number} 0 obj\n".encode() + objects[number] + b"\nendobj\n"
    xref = len(out)
    size = max(objects) + 1
    out += f"xref\n0 {size}\n0000000000 65535 f \n".encode()
    for number in range(1, size):
        out += f"{offsets[number]:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {size} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


# Small documents the tests ingest.
FRUIT = (
    "Red apples grow on trees in orchards. Green apples taste sour.\n\n"
    "Bananas are yellow and grow in tropical climates."
)
TAX = "Tax law is complex. Income tax returns are filed every year in April."
GUIDE = """# Guide

Terminus runs models locally.

## Install

Run pip install terminus to install the package.

```
# not a heading, a shell comment
pip install terminus
```

## Usage

### Search

Call search with a query to find chunks.
"""
