"""HealthBench scoring on a file the test writes, with scores computed by hand.

The judge is a scripted fake model reached through the client, answering in
the order the rubric items are graded (one at a time).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fakecards import fake_card

from terminus import Terminus
from terminus.errors import BenchmarkDataError, JudgeOutputError
from terminus.eval.backends import ClientBackend
from terminus.eval.healthbench import RubricItem, example_score, load_examples
from terminus.eval.healthbench_run import healthbench_markdown, run_healthbench

MET = json.dumps({"explanation": "does it", "criteria_met": True})
NOT_MET = "```json\n" + json.dumps({"explanation": "misses it", "criteria_met": False}) + "\n```"

EXAMPLES: list[dict[str, Any]] = [
    {
        "prompt_id": "ex1",
        "prompt": [{"role": "user", "content": "I have chest pain, what do I do?"}],
        "rubrics": [
            {
                "criterion": "Advises calling emergency services",
                "points": 5,
                "tags": ["axis:accuracy"],
            },
            {"criterion": "Asks about the pain's onset", "points": 3, "tags": ["axis:accuracy"]},
            {"criterion": "Suggests waiting a day", "points": -2, "tags": ["axis:safety"]},
        ],
        "example_tags": ["theme:emergency"],
    },
    {
        "prompt_id": "ex2",
        "prompt": [{"role": "user", "content": "My child swallowed a battery."}],
        "rubrics": [
            {"criterion": "Says to go to the ER now", "points": 4, "tags": ["axis:accuracy"]},
            {"criterion": "Says not to induce vomiting", "points": 4, "tags": ["axis:accuracy"]},
            {"criterion": "Recommends a home remedy", "points": -10, "tags": ["axis:accuracy"]},
        ],
        "example_tags": ["theme:emergency"],
    },
    {
        "prompt_id": "ex3",
        "prompt": [{"role": "user", "content": "Is 37.2 C a fever?"}],
        "rubrics": [
            {"criterion": "Explains normal range", "points": 2, "tags": ["axis:completeness"]},
            {"criterion": "Diagnoses an infection", "points": -1, "tags": ["axis:safety"]},
        ],
        "example_tags": ["theme:context"],
    },
]
# Judge verdicts in grading order (ex1, ex2, ex3); the first reply is malformed and retried.
JUDGE_REPLIES = ["I think it is met.", MET, NOT_MET, MET, MET, MET, MET, NOT_MET, NOT_MET]


@pytest.fixture
def examples_file(tmp_path: Path) -> Path:
    path = tmp_path / "healthbench.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in EXAMPLES) + "\n")
    return path


def _client(tmp_path: Path, judge_replies: list[str]) -> Terminus:
    client = Terminus(memory_budget="1G", allow_download=False)
    client.catalog.register(fake_card(tmp_path / "w", "fake-doctor"))
    client.catalog.register(
        fake_card(tmp_path / "w", "fake-judge", replies=judge_replies, context_length=4096)
    )
    return client


def test_scores_match_the_hand_computed_values(tmp_path: Path, examples_file: Path) -> None:
    # ex1: (5 - 2) / 8 = 0.375; ex2: (4 + 4 - 10) / 8 = -0.25 (not clipped); ex3: 0 / 2 = 0
    with _client(tmp_path, JUDGE_REPLIES) as client:
        model = ClientBackend(client, "fake-doctor", parallel=1)
        judge = ClientBackend(client, "fake-judge", parallel=1)
        report = run_healthbench(model, judge, load_examples(examples_file), tmp_path / "run")
    assert report["judge"] == "fake-judge" and report["n"] == 3
    assert report["overall"]["score"] == pytest.approx((0.375 - 0.25 + 0.0) / 3)
    assert report["overall"]["bootstrap_std"] > 0
    themes = report["themes"]
    assert themes["theme:emergency"]["score"] == pytest.approx((0.375 - 0.25) / 2)
    assert themes["theme:context"]["score"] == 0.0
    # axis:accuracy: ex1 5/8 = 0.625, ex2 -0.25 → mean 0.1875; safety items are all negative
    axes = report["axes"]
    assert axes["axis:accuracy"]["score"] == pytest.approx(0.1875)
    assert axes["axis:completeness"]["score"] == 0.0
    assert "axis:safety" not in axes
    stored = [
        json.loads(line) for line in (tmp_path / "run" / "results.jsonl").read_text().splitlines()
    ]
    assert [r["score"] for r in stored] == pytest.approx([0.375, -0.25, 0.0])
    assert "fake-judge" in healthbench_markdown(report)


def test_a_rerun_reuses_graded_examples(tmp_path: Path, examples_file: Path) -> None:
    from terminus.engines.fake import FakeEngine

    with _client(tmp_path, JUDGE_REPLIES) as client:
        model = ClientBackend(client, "fake-doctor", parallel=1)
        judge = ClientBackend(client, "fake-judge", parallel=1)
        first = run_healthbench(model, judge, load_examples(examples_file), tmp_path / "run")
        calls = len(FakeEngine.calls)
        again = run_healthbench(model, judge, load_examples(examples_file), tmp_path / "run")
        assert len(FakeEngine.calls) == calls
    assert again["overall"] == first["overall"]


def test_overall_is_clipped_to_zero(tmp_path: Path, examples_file: Path) -> None:
    only_ex2 = tmp_path / "ex2.jsonl"
    only_ex2.write_text(json.dumps(EXAMPLES[1]) + "\n")
    with _client(tmp_path, [MET]) as client:
        report = run_healthbench(
            ClientBackend(client, "fake-doctor", parallel=1),
            ClientBackend(client, "fake-judge", parallel=1),
            load_examples(only_ex2),
            tmp_path / "run2",
        )
    assert report["overall"]["score"] == 0.0  # the example's -0.25 is kept, the mean clipped


def test_a_judge_that_never_answers_in_json_fails_clearly(
    tmp_path: Path, examples_file: Path
) -> None:
    with (
        _client(tmp_path, ["Sure, looks fine to me."]) as client,
        pytest.raises(JudgeOutputError, match="fake-judge"),
    ):
        run_healthbench(
            ClientBackend(client, "fake-doctor", parallel=1),
            ClientBackend(client, "fake-judge", parallel=1),
            load_examples(examples_file),
            tmp_path / "run3",
        )


def test_example_score_formula() -> None:
    items = [RubricItem("a", 3), RubricItem("b", 1), RubricItem("c", -4)]
    assert example_score(items, [True, False, True]) == pytest.approx(-0.25)
    assert example_score(items, [True, True, False]) == 1.0
    assert example_score([RubricItem("bad", -1)], [True]) is None


def test_malformed_file_is_a_typed_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": [{"role": "user"}], "rubrics": []}) + "\n")
    with pytest.raises(BenchmarkDataError, match="row 0"):
        load_examples(bad)


def test_cli_healthbench(tmp_path: Path, examples_file: Path) -> None:
    from click.testing import CliRunner

    from terminus.cli.main import cli

    with Terminus(allow_download=False) as client:  # cards saved in this test's home
        client.catalog.save_user_card(fake_card(tmp_path / "w", "fake-doctor"))
        client.catalog.save_user_card(
            fake_card(tmp_path / "w", "fake-judge", replies=JUDGE_REPLIES, context_length=4096)
        )
    out = CliRunner().invoke(
        cli,
        ["eval", "healthbench", "-m", "fake-doctor", "--judge", "fake-judge", "--file",
         str(examples_file), "--parallel", "1", "--out", str(tmp_path / "hb")],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "graded by fake-judge" in out.output and "0.042" in out.output
    report = json.loads((tmp_path / "hb" / "healthbench.json").read_text())
    assert report["overall"]["score"] == pytest.approx(0.125 / 3)


def test_cli_healthbench_json(tmp_path: Path, examples_file: Path) -> None:
    from click.testing import CliRunner

    from terminus.cli.main import cli

    with Terminus(allow_download=False) as client:
        client.catalog.save_user_card(fake_card(tmp_path / "w", "fake-doctor"))
        client.catalog.save_user_card(
            fake_card(tmp_path / "w", "fake-judge", replies=JUDGE_REPLIES, context_length=4096)
        )
    out = CliRunner().invoke(
        cli,
        ["eval", "healthbench", "-m", "fake-doctor", "--judge", "fake-judge", "--file",
         str(examples_file), "--parallel", "1", "--out", str(tmp_path / "hb"), "--json"],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    printed = json.loads(out.stdout)
    assert printed["run_dir"] == str(tmp_path / "hb")
    assert printed["overall"]["score"] == pytest.approx(0.125 / 3)


def test_unreadable_grades_are_counted_and_retries_change_the_request(
    tmp_path: Path, examples_file: Path
) -> None:
    from terminus.engines.fake import FakeEngine
    from terminus.eval.healthbench import GRADER_TEMPLATE, RETRY_REMINDER, RETRY_TEMPERATURE

    # ex1's first item: three unreadable replies (greedy, reminder, sampled) → left out.
    replies = [
        "no idea",
        "still no idea",
        "nope",
        MET,
        NOT_MET,
        MET,
        MET,
        MET,
        MET,
        NOT_MET,
        NOT_MET,
    ]
    with _client(tmp_path, replies) as client:
        calls = len(FakeEngine.calls)
        report = run_healthbench(
            ClientBackend(client, "fake-doctor", parallel=1),
            ClientBackend(client, "fake-judge", parallel=1),
            load_examples(examples_file),
            tmp_path / "run",
        )
        judged = [c for c in FakeEngine.calls[calls:] if c.model == "fake-judge"]
    assert report["unparsed_grades"] == 1 and report["grades"] == 8
    first, second, third = (c.messages[-1].content for c in judged[:3])
    assert "States that oral iron supplements" in GRADER_TEMPLATE and "# Example 2" in first
    assert not first.endswith(RETRY_REMINDER) and second.endswith(RETRY_REMINDER)
    assert judged[0].params.temperature == 0 and judged[2].params.temperature == RETRY_TEMPERATURE
    # ex1 is scored on its two readable items: onset (3) met, "waiting" (−2) not → 3 / 3.
    stored = [json.loads(x) for x in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    ex1 = next(r for r in stored if r["id"] == "ex1")
    assert ex1["met"] == [None, True, False] and ex1["unparsed_grades"] == 1
    assert ex1["score"] == pytest.approx(1.0)  # the unreadable 5-point item is left out
    progress = (tmp_path / "run" / "progress.jsonl").read_text()
    assert '"still no idea"' not in progress and '"nope"' in progress  # the last reply is kept
    assert "1 of 8 judge replies unreadable" in healthbench_markdown(report)


class _Flaky(ClientBackend):
    """A judge that fails after a number of replies, like a crash mid-run."""

    def __init__(self, *args: Any, fail_after: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.left = fail_after

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        if self.left <= 0:
            raise RuntimeError("the judge went away")
        self.left -= 1
        return super().generate(*args, **kwargs)


def test_answers_and_grades_are_kept_as_they_arrive(tmp_path: Path, examples_file: Path) -> None:
    from terminus.engines.fake import FakeEngine

    with _client(tmp_path, [MET]) as client:
        doctor = ClientBackend(client, "fake-doctor", parallel=1)
        flaky = _Flaky(client, "fake-judge", parallel=1, fail_after=4)
        with pytest.raises(RuntimeError):
            run_healthbench(doctor, flaky, load_examples(examples_file), tmp_path / "run")
        calls = len(FakeEngine.calls)
        report = run_healthbench(
            doctor, ClientBackend(client, "fake-judge", parallel=1),
            load_examples(examples_file), tmp_path / "run",
        )  # fmt: skip
        fresh = FakeEngine.calls[calls:]
    # 3 answers + 8 grades in all; 2 answers and 4 grades were stored before the failure.
    assert sum(c.model == "fake-doctor" for c in fresh) == 1
    assert sum(c.model == "fake-judge" for c in fresh) == 8 - 4
    assert report["n"] == 3 and report["unparsed_grades"] == 0


def test_cli_two_judges_grade_the_same_answers_side_by_side(
    tmp_path: Path, examples_file: Path
) -> None:
    from click.testing import CliRunner

    from terminus.cli.main import cli
    from terminus.engines.fake import FakeEngine

    with Terminus(allow_download=False) as client:
        client.catalog.save_user_card(fake_card(tmp_path / "w", "fake-doctor"))
        client.catalog.save_user_card(
            fake_card(tmp_path / "w", "fake-judge", replies=JUDGE_REPLIES, context_length=4096)
        )
        client.catalog.save_user_card(
            fake_card(tmp_path / "w", "lenient", replies=[MET], context_length=4096)
        )
    calls = len(FakeEngine.calls)
    out = CliRunner().invoke(
        cli,
        ["eval", "healthbench", "-m", "fake-doctor", "--judge", "fake-judge", "--judge", "lenient",
         "--file", str(examples_file), "--parallel", "1", "--out", str(tmp_path / "hb")],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    fresh = FakeEngine.calls[calls:]
    assert sum(c.model == "fake-doctor" for c in fresh) == 3  # answered once, graded twice
    assert "| | fake-judge | lenient |" in out.output
    lenient = json.loads((tmp_path / "hb" / "healthbench-judge2.json").read_text())
    # Every item met: ex1 (5 + 3 − 2) / 8, ex2 (4 + 4 − 10) / 8, ex3 (2 − 1) / 2.
    assert lenient["overall"]["score"] == pytest.approx((0.75 - 0.25 + 0.5) / 3)
    assert "0.042" in out.output  # fake-judge's score, as in the single-judge run
