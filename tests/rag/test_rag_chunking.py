"""Chunking strategies: spans are exact, sizes hold, Markdown heading paths travel along."""

from __future__ import annotations

import random

import pytest

from terminus.errors import InvalidParameterError
from terminus.rag.chunking import (
    MarkdownChunker,
    SentenceChunker,
    TokenWindowChunker,
    make_chunker,
    markdown_sections,
)


def _words(n: int, start: int = 0) -> str:
    return " ".join(f"w{i}" for i in range(start, start + n))


def test_token_windows_overlap_and_cover_everything() -> None:
    text = _words(25)
    chunks = TokenWindowChunker(size=10, overlap=3).chunk(text)
    assert [c.text.split()[0] for c in chunks] == ["w0", "w7", "w14", "w21"]
    assert all(len(c.text.split()) <= 10 for c in chunks)
    assert chunks[-1].text.split()[-1] == "w24"
    assert chunks[0].text.split()[-3:] == chunks[1].text.split()[:3]  # the overlap
    assert [c.index for c in chunks] == [0, 1, 2, 3]


def test_sentences_are_never_cut_and_paragraphs_are_preferred() -> None:
    sentences = [f"Sentence {i} has exactly six words." for i in range(6)]
    text = " ".join(sentences[:3]) + "\n\n" + " ".join(sentences[3:])
    chunks = SentenceChunker(size=20, overlap=0).chunk(text)
    # 18 words fit per paragraph; the break lands on the paragraph, not mid-sentence
    assert [c.text for c in chunks] == [" ".join(sentences[:3]), " ".join(sentences[3:])]


def test_sentence_overlap_carries_the_last_sentence() -> None:
    text = " ".join(f"Fact number {i} is here." for i in range(8))  # 5 words each
    chunks = SentenceChunker(size=12, overlap=5).chunk(text)
    assert len(chunks) > 2
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert a.text.split(". ")[-1].rstrip(".") in b.text


def test_abbreviations_do_not_end_sentences() -> None:
    text = "Cells such as e.g. neurons die here. The end is near now, friends."
    chunks = SentenceChunker(size=8, overlap=0).chunk(text)
    assert [c.text for c in chunks] == [
        "Cells such as e.g. neurons die here.",
        "The end is near now, friends.",
    ]


def test_a_sentence_longer_than_the_chunk_falls_back_to_windows() -> None:
    text = _words(50) + ". Short one."
    chunks = SentenceChunker(size=20, overlap=0).chunk(text)
    assert all(len(c.text.split()) <= 20 for c in chunks)
    assert chunks[-1].text.endswith("Short one.")


def test_markdown_sections_keep_heading_paths_and_ignore_fences() -> None:
    text = (
        "Preamble.\n\n# Guide\n\nIntro.\n\n## Install\n\nRun it.\n\n```\n# comment\n```\n\n"
        "### Linux\n\nApt.\n\n## Usage\n\nSearch.\n\nSetext Title\n============\n\nBody.\n"
    )
    paths = [path for path, _, _ in markdown_sections(text)]
    assert paths == [
        (),
        ("Guide",),
        ("Guide", "Install"),
        ("Guide", "Install", "Linux"),
        ("Guide", "Usage"),
        ("Setext Title",),
    ]
    chunks = MarkdownChunker(size=50).chunk(text)
    install = next(c for c in chunks if c.context == "Guide > Install")
    assert "# comment" in install.text  # a fenced line is not a heading
    assert install.embed_text().startswith("Guide > Install\n")
    assert all("#" not in c.text.split("\n")[0] for c in chunks)  # heading lines are context


@pytest.mark.parametrize("strategy", ["tokens", "sentences", "markdown"])
def test_every_chunk_is_an_exact_span(strategy: str) -> None:
    rng = random.Random(7)
    vocabulary = ["alpha", "beta.", "Gamma", "delta!", "# Head", "\n\n", "eps?", "\n## Sub\n"]
    for _ in range(30):
        text = " ".join(rng.choice(vocabulary) for _ in range(rng.randint(1, 300)))
        chunks = make_chunker(strategy, size=16, overlap=4).chunk(text)
        for chunk in chunks:
            assert chunk.text == text[chunk.start : chunk.end]
            assert chunk.text.strip() == chunk.text and chunk.text
        assert [c.index for c in chunks] == list(range(len(chunks)))


def test_auto_picks_by_kind_and_bad_options_are_typed() -> None:
    assert isinstance(make_chunker("auto", kind="markdown"), MarkdownChunker)
    assert isinstance(make_chunker("auto", kind="pdf"), SentenceChunker)
    with pytest.raises(InvalidParameterError, match="unknown chunking"):
        make_chunker("paragraphz")
    with pytest.raises(InvalidParameterError, match="overlap"):
        make_chunker("tokens", size=20, overlap=15)
    with pytest.raises(InvalidParameterError, match="at least 8"):
        make_chunker("tokens", size=2)
