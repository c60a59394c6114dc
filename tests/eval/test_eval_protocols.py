"""Few-shot, custom templates, CircularEval, sampled answers and kept thinking, on
scripted models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakecards import fake_card

from terminus import Terminus
from terminus.engines.fake import FakeEngine
from terminus.errors import IncomparableRunsError, InvalidParameterError
from terminus.eval.api import evaluate
from terminus.eval.backends import ClientBackend, Generation, NextToken
from terminus.eval.items import McqItem
from terminus.eval.protocols import rotations
from terminus.eval.report import compare, load_run
from terminus.eval.runner import RunConfig

DATA = Path(__file__).parents[1] / "data" / "medbench"


def _client(tmp_path: Path) -> Terminus:
    client = Terminus(memory_budget="1G", allow_download=False)
    for name, replies in (
        ("always-a", ["Answer: A"]),
        ("a-then-b", ["Answer: A", "Answer: B"]),
        ("thinker", ["<think>B looks right, A does not.</think>\nAnswer: B"]),
    ):
        client.catalog.register(fake_card(tmp_path / "w", name, replies=replies))
    return client


def _run(client: Terminus, tmp_path: Path, model: str, folder: str, **kw: object) -> dict:
    config = RunConfig(("medqa",), mode="generative", max_tokens=8, **kw)  # type: ignore[arg-type]
    _, summary = evaluate(client, model, config, data_dir=DATA, run_dir=tmp_path / folder,
                          backend=ClientBackend(client, model, parallel=1))  # fmt: skip
    return summary


def test_rotations_move_the_answer_through_every_letter() -> None:
    item = McqItem("q", "?", {"A": "a", "B": "b", "C": "c", "D": "d"}, "B")
    rotated = rotations(item)
    assert [r.answer for r, _ in rotated] == ["B", "A", "D", "C"]
    for r, back in rotated:
        assert r.options[r.answer] == "b" and back[r.answer] == "B"
        assert sorted(r.options.values()) == ["a", "b", "c", "d"]
    assert len(rotations(McqItem("p", "?", {"yes": "", "no": "", "maybe": ""}, "no"))) == 1


def test_circular_counts_an_item_only_if_right_in_every_rotation(tmp_path: Path) -> None:
    with _client(tmp_path) as client:
        calls = len(FakeEngine.calls)
        summary = _run(client, tmp_path, "always-a", "c", limit=8, circular=True)
        assert len(FakeEngine.calls) - calls == 8 * 4
    medqa = summary["benchmarks"]["medqa"]
    answers = [r["answer"] for r in load_run(tmp_path / "c").rows["medqa"].values()]
    assert medqa["accuracy"] == 0.0  # "A" is right in exactly one rotation of each item
    assert medqa["circular"] and medqa["first_rotation_accuracy"] == answers.count("A") / 8
    assert "CircularEval" in (tmp_path / "c" / "report.md").read_text()


def test_fewshot_examples_are_held_out_and_shown_first(tmp_path: Path) -> None:
    with _client(tmp_path) as client:
        _run(client, tmp_path, "always-a", "f", limit=5, fewshot=2)
        request = FakeEngine.calls[-1]
        zero = _run(client, tmp_path, "always-a", "z", limit=5)
    meta = json.loads((tmp_path / "f" / "run.json").read_text())
    shots = meta["data"]["medqa"]["fewshot_ids"]
    assert len(shots) == 2 and not set(shots) & set(meta["data"]["medqa"]["item_ids"])
    roles = [m.role for m in request.messages]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user"]
    assert all(m.content.startswith("Answer: ") for m in request.messages if m.role == "assistant")
    assert zero["benchmarks"]["medqa"]["n"] == 5
    with pytest.raises(IncomparableRunsError, match="fewshot"):
        compare(load_run(tmp_path / "z"), load_run(tmp_path / "f"))


class _Prompts:
    """A backend that records each raw prompt and always prefers " B"."""

    label = "recorder"
    parallel = 1

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def describe(self) -> dict[str, str]:
        return {"model": "recorder"}

    def generate(self, *args: object, **kwargs: object) -> Generation:
        raise AssertionError("log-likelihood mode generates nothing")

    def next_token(self, prompt: str, top: int) -> NextToken:
        self.prompts.append(prompt)
        return NextToken({" A": -2.0, " B": -0.5}, prompt_tokens=len(prompt.split()))


def test_loglikelihood_fewshot_prompt_ends_each_example_with_its_answer(tmp_path: Path) -> None:
    recorder = _Prompts()
    with Terminus(memory_budget="1G", allow_download=False) as client:
        evaluate(client, "recorder", RunConfig(("medqa",), limit=2, fewshot=3), data_dir=DATA,
                 run_dir=tmp_path / "l", backend=recorder)  # fmt: skip
    meta = json.loads((tmp_path / "l" / "run.json").read_text())
    assert len(recorder.prompts) == 2
    shared = recorder.prompts[0].rsplit("\n\nQuestion: ", 1)[0]
    assert recorder.prompts[1].startswith(shared + "\n\n")  # one prefix for every item
    parts = recorder.prompts[0].split("\n\n")
    assert len(parts) == 4 and all(p.startswith("Question: ") for p in parts)
    assert all(p.rsplit("\n", 1)[-1] in ("Answer: A", "Answer: B", "Answer: C", "Answer: D")
               for p in parts[:3])  # fmt: skip
    assert parts[3].endswith("Answer:")
    assert meta["prompt"]["first_item"]["medqa"] == recorder.prompts[0]


def test_custom_template_names_its_own_version(tmp_path: Path) -> None:
    template = "Q: {question}\nPick one of {keys}.\n{options}\nEnd with 'Answer: X'."
    with _client(tmp_path) as client:
        summary = _run(client, tmp_path, "always-a", "t", limit=2, template=template)
        sent = FakeEngine.calls[-1].messages[-1].content
    assert summary["prompt_version"].startswith("custom-") and sent.startswith("Q: ")
    assert "Pick one of A, B, C, D." in sent
    with pytest.raises(InvalidParameterError, match="needs"):
        RunConfig(("medqa",), template="just {question}")
    with pytest.raises(InvalidParameterError, match="bad prompt template"):
        RunConfig(("medqa",), template="{question} {options} {nope}")


def test_samples_give_mean_at_k_with_an_interval_across_seeds(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match="temperature"):
        RunConfig(("medqa",), mode="generative", samples=3)
    with _client(tmp_path) as client:
        summary = _run(client, tmp_path, "a-then-b", "s", limit=10, samples=2, temperature=0.7)
    answers = [r["answer"] for r in load_run(tmp_path / "s").rows["medqa"].values()]
    m = summary["benchmarks"]["medqa"]["mean_at_k"]
    assert m["k"] == 2 and m["per_seed"] == [answers.count("A") / 10, answers.count("B") / 10]
    assert m["mean"] == pytest.approx(sum(m["per_seed"]) / 2)
    assert m["ci95_across_seeds"][0] <= m["mean"] <= m["ci95_across_seeds"][1]


def test_thinking_is_kept_apart_from_the_extracted_answer(tmp_path: Path) -> None:
    with _client(tmp_path) as client:
        _run(client, tmp_path, "thinker", "k", limit=3)
    for row in load_run(tmp_path / "k").rows["medqa"].values():
        assert row["predicted"] == "B"
        assert "A does not" in row["thinking"] or "A does not" in row["response"]
        assert row["thinking"]
