"""Speculative decoding on real Qwen2.5-Coder-0.5B: same greedy text, drafted tokens counted.

The 0.5B drafts for itself here (cheap to load twice, and every draft should be kept);
bench/bench_speculative.py measures the 0.5B drafting for the 1.5B.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from realmodel import GREEDY, llama_threads, make_client

from terminus.errors import InvalidParameterError
from terminus.types import Stats

pytestmark = pytest.mark.real

QWEN = "qwen2.5-coder-0.5b-instruct"
SMOLLM2 = "smollm2-135m-instruct"
# The answer repeats the code it is given: n-gram lookup finds its drafts in the prompt.
PROMPT = (
    "Add a docstring to this function and return the whole function unchanged otherwise.\n\n"
    "def area(width, height):\n    return width * height\n"
)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("terminus-spec")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _answer(home: Path, **load: object) -> tuple[str, Stats]:
    with make_client(home, memory_budget="3G") as client:
        client.load_model(QWEN, context_length=512, parallel=1, threads=llama_threads(), **load)
        result = client.completion(PROMPT, model=QWEN, max_tokens=48, **GREEDY).result()
        assert result.stats is not None
        return result.text, result.stats


@pytest.fixture(scope="module")
def plain(home: Path) -> tuple[str, Stats]:
    return _answer(home)


def test_plain_decoding_reports_no_drafts(plain: tuple[str, Stats]) -> None:
    text, stats = plain
    assert "def area" in text
    assert stats.draft_tokens is None and stats.acceptance_rate is None


def test_draft_model_keeps_greedy_text(home: Path, plain: tuple[str, Stats]) -> None:
    text, stats = _answer(home, draft_model="qwen", draft_max=4)
    assert text == plain[0]
    assert stats.draft_tokens and stats.draft_tokens > 0
    # a model drafting for itself proposes what it would have said
    assert stats.acceptance_rate is not None and stats.acceptance_rate > 0.8
    assert "drafted tokens kept" in str(stats)


def test_ngram_lookup_keeps_greedy_text(home: Path, plain: tuple[str, Stats]) -> None:
    text, stats = _answer(home, speculative="ngram")
    assert text == plain[0]
    assert stats.draft_tokens and stats.draft_tokens > 0  # the answer quotes the prompt
    assert stats.draft_accepted is not None and 0 < stats.draft_accepted <= stats.draft_tokens


def test_draft_with_another_tokenizer_is_refused(home: Path) -> None:
    """llama.cpp would load it and silently decode without drafts; Terminus says why."""
    with make_client(home, memory_budget="3G") as client:
        with pytest.raises(InvalidParameterError, match="tokenizers differ"):
            client.load_model(QWEN, context_length=512, parallel=1, draft_model=SMOLLM2)
        assert client.loaded_models() == []
