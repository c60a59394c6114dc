"""What every run records and reports: software, model, data file, prompt, decoding,
parallelism; baselines; and which runs compare refuses to pair."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakecards import fake_card

from terminus import Terminus, __version__
from terminus.cli.main import cli
from terminus.engines.fake import FakeEngine
from terminus.errors import BenchmarkDataError, IncomparableRunsError, InvalidParameterError
from terminus.eval.api import evaluate
from terminus.eval.backends import ClientBackend
from terminus.eval.datasets import file_sha256
from terminus.eval.report import compare, compare_markdown, load_run
from terminus.eval.runner import RunConfig

DATA = Path(__file__).parents[1] / "data" / "medbench"
MEDQA = DATA / "medqa_usmle_4opt_test.jsonl"


def _client(tmp_path: Path) -> Terminus:
    client = Terminus(memory_budget="1G", allow_download=False)
    for name, reply in (("always-a", "Answer: A"), ("always-b", "Answer: B")):
        client.catalog.save_user_card(
            fake_card(tmp_path / "w", name, replies=[reply], user_added=True)
        )
    return client


def _run(client: Terminus, tmp_path: Path, model: str, folder: str, **kw: object) -> Path:
    config = RunConfig(("medqa",), mode="generative", max_tokens=8, **kw)  # type: ignore[arg-type]
    evaluate(client, model, config, data_dir=DATA, run_dir=tmp_path / folder,
             backend=ClientBackend(client, model, parallel=2))  # fmt: skip
    return tmp_path / folder


def test_run_records_software_model_data_prompt_decoding(tmp_path: Path) -> None:
    with _client(tmp_path) as client:
        run_dir = _run(client, tmp_path, "always-a", "a", limit=10)
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["software"]["terminus"] == __version__
    assert "xllamacpp" in meta["software"]["engine_builds"]
    assert meta["parallel"] == 2
    assert meta["decoding"]["kind"] == "greedy" and meta["decoding"]["max_tokens"] == 8
    assert meta["prompt"]["version"] == "medbench-v2"
    assert "Answer: " in meta["prompt"]["system"]
    assert meta["prompt"]["first_item"]["medqa"].startswith("[user] Question: ")
    assert meta["data"]["medqa"]["sha256"] == file_sha256(MEDQA)
    report = (run_dir / "report.md").read_text()
    assert f"terminus {__version__}" in report and "parallel 2" in report
    assert str(MEDQA) in report


def test_parallelism_is_part_of_the_resume_key(tmp_path: Path) -> None:
    config = RunConfig(("medqa",), mode="generative", limit=3, max_tokens=8)
    scored = []
    with _client(tmp_path) as client:
        for parallel in (1, 1, 2):
            calls = len(FakeEngine.calls)
            evaluate(client, "always-a", config, data_dir=DATA, run_dir=tmp_path / "r",
                     backend=ClientBackend(client, "always-a", parallel=parallel))  # fmt: skip
            scored.append(len(FakeEngine.calls) - calls)
    assert scored == [3, 0, 3]  # the same parallelism resumes; another one scores afresh
    rows = [json.loads(line) for line in (tmp_path / "r/results.jsonl").read_text().splitlines()]
    assert len({row["key"] for row in rows}) == 2 and len(rows) == 6


def test_baselines_flag_a_model_answering_one_letter(tmp_path: Path) -> None:
    with _client(tmp_path) as client:
        run_dir = _run(client, tmp_path, "always-a", "a", limit=20)
    report = json.loads((run_dir / "report.json").read_text())
    base = report["benchmarks"]["medqa"]["baselines"]
    answers = [r["answer"] for r in load_run(run_dir).rows["medqa"].values()]
    assert base["chance"] == pytest.approx(0.25)
    majority = max(set(answers), key=answers.count)
    assert base["majority_answer"] == majority
    assert base["majority_accuracy"] == answers.count(majority) / 20
    assert base["predictions"] == {"A": 20} and base["collapsed"]
    assert "⚠ answered A on 20/20" in (run_dir / "report.md").read_text()


def test_compare_refuses_other_items_prompt_or_mode(tmp_path: Path) -> None:
    with _client(tmp_path) as client:
        a = _run(client, tmp_path, "always-a", "a", limit=6)
        b = _run(client, tmp_path, "always-b", "b", limit=6)
        other_items = _run(client, tmp_path, "always-b", "c", limit=6, seed=3)
        other_prompt = _run(client, tmp_path, "always-b", "d", limit=6, prompt_version="x")
    result = compare(load_run(a), load_run(b))
    assert "to" in compare_markdown(result) and "+0.000 to +0.000" not in compare_markdown(result)
    with pytest.raises(IncomparableRunsError, match="different items"):
        compare(load_run(a), load_run(other_items))
    with pytest.raises(IncomparableRunsError, match="prompt_version"):
        compare(load_run(a), load_run(other_prompt))
    out = CliRunner().invoke(cli, ["eval", "compare", str(a), str(other_items)])
    assert out.exit_code == 57 and "different items" in out.output


def test_file_override_reads_a_renamed_copy_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    renamed = tmp_path / "held-out-medqa.jsonl"
    shutil.copy(MEDQA, renamed)
    monkeypatch.setenv("TERMINUS_HOME", str(tmp_path / "home"))
    home_client = Terminus(memory_budget="1G", allow_download=False)
    home_client.catalog.save_user_card(
        fake_card(tmp_path / "w", "always-b", replies=["Answer: B"], user_added=True)
    )
    home_client.close()
    out = CliRunner().invoke(cli, ["--offline", "eval", "run", "-m", "always-b", "--mode",
                                   "generative", "--file", f"medqa={renamed}", "--limit", "3",
                                   "--max-tokens", "8", "--out", str(tmp_path / "run")])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert f"medqa: read {renamed}" in out.output
    meta = json.loads((tmp_path / "run/run.json").read_text())
    assert meta["data"]["medqa"]["source"] == str(renamed)
    bad = CliRunner().invoke(cli, ["--offline", "eval", "run", "-m", "always-b",
                                   "--file", "medqa", "--out", str(tmp_path / "x")])  # fmt: skip
    assert bad.exit_code != 0 and "BENCH=PATH" in bad.output
    with _client(tmp_path) as client, pytest.raises(BenchmarkDataError, match="no such file"):
        evaluate(client, "always-b", RunConfig(("medqa",)), files={"medqa": tmp_path / "nope"},
                 backend=ClientBackend(client, "always-b"))  # fmt: skip
    with _client(tmp_path) as client, pytest.raises(InvalidParameterError, match="does not score"):
        evaluate(client, "always-b", RunConfig(("medqa",)), files={"pubmedqa": renamed},
                 backend=ClientBackend(client, "always-b"))  # fmt: skip


def test_majority_ties_break_by_letter_not_by_row_order() -> None:
    from terminus.eval.baselines import baselines

    rows = [{"answer": a, "predicted": "C", "options": 4} for a in "BABA"]
    assert baselines(rows)["majority_answer"] == baselines(rows[::-1])["majority_answer"] == "A"
    assert baselines(rows)["majority_accuracy"] == 0.5
