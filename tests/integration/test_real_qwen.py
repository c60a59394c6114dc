"""Qwen2.5-Coder-0.5B-Instruct (491 MB, assembled from six package chunks) on llama.cpp."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from realmodel import GREEDY, llama_threads, make_client

from terminus import Terminus
from terminus.types import ContentDelta, Done, ToolCallEvent

pytestmark = pytest.mark.real

QWEN = "qwen2.5-coder-0.5b-instruct"
QWEN_SIZE = 491_400_064

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Get the current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


@pytest.fixture(scope="module")
def qwen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Terminus]:
    home = tmp_path_factory.mktemp("terminus-qwen")
    terminus = make_client(home)
    files = terminus.models.pull(QWEN)  # six installed chunks, concatenated and verified
    assert files.main.stat().st_size == QWEN_SIZE
    terminus.load_model(QWEN, context_length=1024, parallel=1, threads=llama_threads())
    yield terminus
    terminus.close()
    shutil.rmtree(home, ignore_errors=True)


def test_qwen_answers_paris(qwen: Terminus) -> None:
    result = qwen.completion("What is the capital of France?", model=QWEN, max_tokens=32, **GREEDY)
    completion = result.result()
    assert completion.stop_reason == "stop"
    assert "Paris" in completion.text


def test_qwen_calls_the_tool_unforced(qwen: Terminus) -> None:
    """tool_choice="auto" in prompted mode: greedy Qwen writes the JSON call on its own."""
    stream = qwen.completion(
        "What is the weather in Paris?",
        model=QWEN,
        tools=[WEATHER_TOOL],
        tool_choice="auto",
        max_tokens=80,
        **GREEDY,
    )
    events = list(stream)
    calls = [e.call for e in events if isinstance(e, ToolCallEvent)]
    assert [c.name for c in calls] == ["get_weather"]
    assert calls[0].arguments == {"city": "Paris"}
    assert not any(isinstance(e, ContentDelta) for e in events)  # held back, parsed, not shown
    assert events[-1] == Done(stop_reason="tool_calls")


def test_qwen_option_scores_reuse_is_exact(qwen: Terminus) -> None:
    """Scoring a context followed by each option reuses the last prompt's rows: the numbers
    must equal a fresh computation bit for bit (Q4_K_M kernels too)."""
    from terminus.engines.llamacpp_score import PromptScorer

    context = "Question: Which organ pumps blood through the body?\nA. Lungs\nB. Heart\nAnswer:"
    path = qwen.manager.ensure_files(qwen.catalog.get(QWEN)).main
    with_reuse, fresh = PromptScorer(path, context=512), PromptScorer(path, context=512)
    try:
        prompts = [qwen.tokenize(context + option, model=QWEN) for option in (" A", " B", " C")]
        assert len({len(p) for p in prompts}) == 1  # one token each: the reuse applies
        for prompt in prompts:
            reused = with_reuse.score(prompt, top=3)
            fresh.forget()
            assert reused == fresh.score(prompt, top=3)
        assert reused[-1].top[0][0] in (" A", " B")
    finally:
        with_reuse.close()
        fresh.close()
