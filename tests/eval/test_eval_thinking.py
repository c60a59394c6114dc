"""The thinking budget on a scripted thinking model: reasoning closed at the budget, then the
answer continues the same assistant message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from terminus.errors import IncomparableRunsError, InvalidParameterError
from terminus.eval.backends import Generation, NextToken
from terminus.eval.items import McqItem
from terminus.eval.runner import RunConfig, score_item
from terminus.eval.thinking import CLOSE_THINKING, generate_with_budget

ITEM = McqItem("q1", "Which?", {"A": "a", "B": "b", "C": "c", "D": "d"}, "B")


class Thinker:
    """Thinks for ``thought_words`` words, then answers B; every call is recorded."""

    label = "thinker"
    parallel = 1

    def __init__(self, thought_words: int) -> None:
        self.thought = " ".join(f"step{i}" for i in range(thought_words))
        self.calls: list[tuple[list[dict[str, str]], int]] = []

    def describe(self) -> dict[str, Any]:
        return {"model": "thinker"}

    def generate(
        self, messages: list[dict[str, str]], *, max_tokens: int, temperature: float, seed: int
    ) -> Generation:
        self.calls.append((messages, max_tokens))
        if messages[-1]["role"] == "assistant":  # a continuation
            reply = "Answer: B"
        else:
            reply = f"<think>{self.thought}</think>Answer: B"
        words = reply.split(" ")
        return Generation(" ".join(words[:max_tokens]), "", 10, min(len(words), max_tokens))

    def next_token(self, prompt: str, top: int) -> NextToken:
        raise AssertionError("generative only")


def test_reasoning_over_the_budget_is_closed_and_the_answer_continues() -> None:
    model = Thinker(thought_words=50)
    run = generate_with_budget(
        model, [{"role": "user", "content": "?"}], budget=8, max_tokens=16, temperature=0, seed=0
    )
    assert run.truncated and run.thinking_tokens == 8
    assert run.generation.text == "Answer: B"
    assert "step6" in run.generation.thinking and "limited time" in run.generation.thinking
    (_, first_max), (second_messages, second_max) = model.calls
    assert first_max == 8 and second_max == 16
    prefill = second_messages[-1]
    assert prefill["role"] == "assistant" and prefill["content"].endswith(CLOSE_THINKING)
    assert run.generation.completion_tokens == 8 + 2


def test_reasoning_within_the_budget_needs_one_call() -> None:
    model = Thinker(thought_words=3)
    run = generate_with_budget(
        model, [{"role": "user", "content": "?"}], budget=64, max_tokens=16, temperature=0, seed=0
    )
    assert not run.truncated and len(model.calls) == 1
    assert "Answer: B" in run.generation.text


def test_an_item_record_says_the_budget_cut_the_reasoning() -> None:
    config = RunConfig(("medqa",), mode="generative", max_tokens=16, thinking_budget=8)
    row = score_item(Thinker(thought_words=50), "medqa", ITEM, config)
    assert row["correct"] and row["thinking_truncated"] and row["thinking_tokens"] == 8
    assert "<think>" not in row["response"] and "step0" in row["thinking"]


def test_a_budget_is_generative_and_positive() -> None:
    with pytest.raises(InvalidParameterError, match="thinking budget"):
        RunConfig(("medqa",), mode="loglikelihood", thinking_budget=8)
    with pytest.raises(InvalidParameterError, match="thinking budget"):
        RunConfig(("medqa",), mode="generative", thinking_budget=0)


def test_runs_with_different_budgets_are_not_compared(tmp_path: Path) -> None:
    from terminus.eval.report import Run, comparable

    def run(budget: int | None) -> Run:
        meta = {
            "config": {"mode": "generative", "prompt_version": "v", "fewshot": 0,
                       "circular": False, "samples": 1, "template": None,
                       "thinking_budget": budget},
            "data": {},
        }  # fmt: skip
        return Run(path=tmp_path / str(budget), meta=meta, rows={})

    comparable(run(256), run(256))
    with pytest.raises(IncomparableRunsError, match="thinking_budget 256 vs None"):
        comparable(run(256), run(None))
