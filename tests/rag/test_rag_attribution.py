"""Citations matched to an answer's sentences, and the focused context (no model needed)."""

from __future__ import annotations

import zlib

import numpy as np
from ragkit import CHAT, FRUIT, TAX

from terminus.rag import Workspace
from terminus.rag.attribution import attribute, says_unknown
from terminus.rag.focus import select
from terminus.rag.types import ChunkPosition, SearchResult

PORT = "The server listens on 127.0.0.1 by default. Its port is 8080 unless --port says otherwise."
KEY = "Each node has an Ed25519 key, kept in identity/node.key with mode 0600."
SPEED = "Decoding runs at 40 tokens a second on two cores."


def bag(texts: list[str]) -> np.ndarray:
    """A tiny embedding: hashed words, unit length (like the fake engine's)."""
    out = np.zeros((len(texts), 4096), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in text.lower().split():
            out[row, zlib.crc32(word.strip(".,?").encode()) % 4096] += 1.0
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def hit(text: str, source: str, score: float = 0.5) -> SearchResult:
    return SearchResult(
        score=score,
        chunk_id=zlib.crc32(source.encode()) % 1000,
        document_id=source,
        source=source,
        text=text,
        position=ChunkPosition(index=0, start=0, end=len(text)),
    )


def test_each_sentence_goes_to_the_source_holding_its_new_words() -> None:
    shown = [PORT, KEY, SPEED]
    found = attribute(
        "The default port is 8080. The key is Ed25519.", "Which port and key?", shown, bag
    )
    assert found == [[0], [1]]


def test_words_of_the_question_are_no_evidence() -> None:
    # "ed25519" is asked about, so only "0600" (the answer's own fact) can decide
    found = attribute("Its mode is 0600.", "What mode has the Ed25519 key file?", [PORT, KEY])
    assert found == [[1]]
    assert attribute("It is an Ed25519 key.", "Is it an Ed25519 key?", [KEY]) == [[]]


def test_an_answer_the_sources_do_not_hold_cites_nothing() -> None:
    assert attribute("It runs at 75 tokens a second.", "How fast?", [PORT, KEY], bag) == [[]]
    assert attribute("I do not know.", "How fast?", [SPEED], bag) == [[]]
    assert says_unknown("The sources do not contain the answer.")
    assert not says_unknown("The port is 8080.")
    assert attribute("", "How fast?", [SPEED]) == []


def test_a_figure_no_source_states_is_not_attributed_for_its_other_words() -> None:
    # "listens" and "server" are in PORT, but 3094 is nowhere: a made-up port cites nothing
    assert attribute("The server listens on port 3094.", "Which port?", [PORT, KEY]) == [[]]
    assert attribute("The server listens on port 8080.", "Which port?", [PORT, KEY]) == [[0]]


def test_a_word_every_source_has_counts_less_than_a_rare_one() -> None:
    shown = ["The port is 8080 on the server.", "The server is fast; its port is 9000."]
    assert attribute("The server port is 9000.", "Which port?", shown) == [[1]]


def test_focus_keeps_the_sentences_closest_to_the_question_in_chunk_order() -> None:
    results = [hit(f"{SPEED} {PORT}", "a.md", 0.9), hit(KEY, "b.md", 0.8)]
    picked = select("Which port does the server listen on?", results, bag, budget_words=20)
    sources = [r.source for r, _ in picked]
    assert sources[0] == "a.md"
    sentences = picked[0][1]
    assert any("8080" in s or "127.0.0.1" in s for s in sentences)
    assert sum(len(s.split()) for _, parts in picked for s in parts) <= 20
    assert all(SPEED not in s for s in sentences)  # off the question: left out for budget


def test_focus_skips_markup_lines_and_caps_the_number_of_chunks() -> None:
    table = "| a | b |\n|---|---|\n| port | 8080 |"
    results = [hit(table, f"{i}.md") for i in range(5)]
    picked = select("port", results, bag, budget_words=100, max_sources=2)
    assert len(picked) == 2
    assert all("---" not in s for _, parts in picked for s in parts)


def test_cited_text_marks_each_sentence(ws: Workspace) -> None:
    ws.ingest_text(FRUIT, source="fruit.txt")
    ws.ingest_text(TAX, source="tax.txt")
    answer = ws.ask("What color are apples?", CHAT, top_k=2)
    assert answer.cited_text == "Apples are red [1] [1]."  # the model's own "[1]", then ours
    assert answer.citations[0].how == "matched"
