"""HealthBench judge calibration (the meta-evaluation) on a file in the published format,
with a scripted judge and agreement figures computed by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fakecards import fake_card

from terminus import Terminus
from terminus.errors import BenchmarkDataError, JudgeOutputError
from terminus.eval.backends import ClientBackend
from terminus.eval.healthbench_meta import (
    agreement,
    calibration_markdown,
    load_meta,
    physicians_agreement,
    run_calibration,
)
from terminus.eval.items import sample

MET = json.dumps({"explanation": "does it", "criteria_met": True})
NOT_MET = json.dumps({"explanation": "misses it", "criteria_met": False})


def row(cid: str, labels: list[bool], ids: list[str], category: str) -> dict[str, Any]:
    return {
        "prompt_id": "p-" + cid,
        "completion_id": cid,
        "prompt": [{"role": "user", "content": "Is 37.2 °C a fever?"}],
        "completion": "No, 37.2 °C is within the normal range.",
        "rubric": "States that 37.2 °C is not a fever.",
        "binary_labels": labels,
        "anonymized_physician_ids": ids,
        "category": category,
    }


ROWS = [
    row("c1", [True, True, False], ["a", "b", "c"], "cluster_emergency"),
    row("c2", [False, False], ["a", "b"], "cluster_emergency"),
    row("c3", [True, False], ["b", "c"], "cluster_context"),
    row("c4", [True], ["a"], "cluster_context"),
]


@pytest.fixture
def meta_file(tmp_path: Path) -> Path:
    path = tmp_path / "meta.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return path


def test_agreement_by_hand() -> None:
    pairs = [(True, True), (True, False), (False, False), (False, True), (True, True)]
    result = agreement(pairs)
    # met: the rater said met 3 times, right twice; the other said met 3 times, matched twice
    assert result["met"] == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3})
    assert result["not_met"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5})
    assert result["balanced_f1"] == pytest.approx(7 / 12)
    assert result["agreement"] == pytest.approx(3 / 5)
    # a class that never occurs leaves its F1 and the balanced F1 undefined, not zero
    assert agreement([(True, True)])["balanced_f1"] is None


def test_physicians_are_scored_against_each_other(meta_file: Path) -> None:
    rows = load_meta(meta_file)
    result = physicians_agreement(rows)
    # a: c1 (T vs b T, c F), c2 (F vs b F) -> met P 1/2 R 1, not met P 1 R 1/2: F1s 2/3, 2/3
    a = agreement([(True, True), (True, False), (False, False)])
    assert a["balanced_f1"] == pytest.approx(2 / 3)
    assert result["physicians"] == 3
    others = [
        agreement([(True, True), (True, False), (False, False), (True, False)]),  # b
        agreement([(False, True), (False, True), (False, True)]),  # c: never said met
    ]
    scored = [a["balanced_f1"], *(o["balanced_f1"] for o in others if o["balanced_f1"])]
    assert result["scored"] == len(scored)
    assert result["mean_balanced_f1"] == pytest.approx(sum(scored) / len(scored))


def _client(tmp_path: Path, replies: list[str]) -> Terminus:
    client = Terminus(memory_budget="1G", allow_download=False)
    client.catalog.register(
        fake_card(tmp_path / "w", "fake-judge", replies=replies, context_length=4096)
    )
    return client


def test_calibration_report_and_resume(tmp_path: Path, meta_file: Path) -> None:
    rows = load_meta(meta_file)
    order = [r.id for r in sample(rows, None, 0)]
    verdict = {"c1": MET, "c2": NOT_MET, "c3": MET, "c4": "no idea"}  # c4: never readable
    replies = []
    for cid in order:
        replies += [verdict[cid]] * (3 if cid == "c4" else 1)
    with _client(tmp_path, replies) as client:
        judge = ClientBackend(client, "fake-judge", parallel=1)
        report = run_calibration(judge, rows, tmp_path / "run", data_source=str(meta_file))
        assert report["n"] == 4 and report["unparsed_grades"] == 1
        # judge met on c1 (labels T T F) and c3 (T F), not met on c2 (F F)
        expected = agreement(
            [(True, True), (True, True), (True, False), (False, False), (False, False),
             (True, True), (True, False)]
        )  # fmt: skip
        assert report["judge_agreement"] == expected
        # by hand: met P 3/5, R 3/3 -> F1 3/4; not met P 2/2, R 2/4 -> F1 2/3
        assert expected["balanced_f1"] == pytest.approx((3 / 4 + 2 / 3) / 2)
        assert report["judge_said_met"] == 2
        assert set(report["by_category"]) == {"cluster_emergency", "cluster_context"}
        text = calibration_markdown(report)
        assert "balanced F1" in text and "1 unreadable" in text
        # a rerun grades nothing again (the scripted judge has no replies left)
        again = run_calibration(judge, rows, tmp_path / "run", data_source=str(meta_file))
        assert again["judge_agreement"] == report["judge_agreement"]


def test_a_judge_that_never_answers_fails_clearly(tmp_path: Path, meta_file: Path) -> None:
    with _client(tmp_path, ["nonsense"] * 12) as client:
        judge = ClientBackend(client, "fake-judge", parallel=1)
        with pytest.raises(JudgeOutputError, match="no readable"):
            run_calibration(judge, load_meta(meta_file), tmp_path / "run")
    kept = (tmp_path / "run" / "results.jsonl").read_text().splitlines()
    assert len(kept) == 4  # every reply stored


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"binary_labels": []}, "binary_labels"),
        ({"binary_labels": ["yes"]}, "binary_labels"),
        ({"anonymized_physician_ids": ["a"]}, "physician ids"),
        ({"completion": None, "rubric": None, "prompt": None}, "meta-evaluation row"),
    ],
)
def test_malformed_rows_are_typed_errors(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    bad = {**ROWS[0], **change}
    if change.get("prompt", 0) is None:
        del bad["prompt"]
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(bad) + "\n")
    with pytest.raises(BenchmarkDataError, match=message):
        load_meta(path)


def test_cli_calibrate(tmp_path: Path, meta_file: Path) -> None:
    from click.testing import CliRunner

    from terminus.cli.main import cli

    with Terminus(allow_download=False) as client:
        client.catalog.save_user_card(
            fake_card(tmp_path / "w", "fake-judge", replies=[MET] * 4, context_length=4096)
        )
    out = CliRunner().invoke(
        cli,
        ["eval", "healthbench-calibrate", "--judge", "fake-judge", "--file", str(meta_file),
         "--parallel", "1", "--out", str(tmp_path / "cal")],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "judge calibration: fake-judge" in out.output
    report = json.loads((tmp_path / "cal" / "calibration.json").read_text())
    assert report["judge_said_met"] == 4
    # always "met": it never says "not met", so its balanced F1 is undefined
    assert report["judge_agreement"]["balanced_f1"] is None
    assert report["judge_agreement"]["agreement"] == pytest.approx(4 / 8)


def test_cli_offline_without_the_file_names_the_option(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from terminus.cli.main import cli

    out = CliRunner().invoke(
        cli, ["eval", "healthbench-calibrate", "--judge", "smollm2"], env={"TERMINUS_OFFLINE": "1"}
    )
    assert out.exit_code == 6
    assert "pass --file" in out.output
