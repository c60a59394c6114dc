"""Runs on a scripted fake model: scoring, resume, reports and paired comparison."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakecards import fake_card

from terminus import Terminus
from terminus.cli.main import cli
from terminus.engines.fake import FakeEngine
from terminus.errors import EvalRunNotFoundError, IncomparableRunsError
from terminus.eval.api import evaluate
from terminus.eval.backends import ClientBackend, parse_top_logprobs
from terminus.eval.report import compare, load_run, write_reports
from terminus.eval.runner import RunConfig

DATA = Path(__file__).parents[1] / "data" / "medbench"


def _client(tmp_path: Path) -> Terminus:
    client = Terminus(memory_budget="1G", allow_download=False)
    weights = tmp_path / "w"
    client.catalog.register(fake_card(weights, "always-b", replies=["Let me think.\nAnswer: B"]))
    client.catalog.register(fake_card(weights, "always-a", replies=["(A)"]))
    client.catalog.register(fake_card(weights, "rambler", replies=["I cannot decide."]))
    return client


def _expected_b(limit: int) -> int:
    from terminus.eval.datasets import load_benchmark
    from terminus.eval.items import sample

    items = load_benchmark("medqa", DATA, DATA, allow_download=False).items
    return sum(1 for item in sample(items, limit, 0) if item.answer == "B")


def test_generative_run_scores_resumes_and_reports(tmp_path: Path) -> None:
    config = RunConfig(("medqa",), mode="generative", limit=6, seed=0, max_tokens=32)
    with _client(tmp_path) as client:
        backend = ClientBackend(client, "always-b", parallel=3)
        run_dir, summary = evaluate(
            client, "always-b", config, data_dir=DATA, run_dir=tmp_path / "b", backend=backend
        )
        medqa = summary["benchmarks"]["medqa"]
        assert medqa["n"] == 6 and medqa["unparsed"] == 0
        assert medqa["correct"] == _expected_b(6)
        assert medqa["ci95"][0] <= medqa["accuracy"] <= medqa["ci95"][1]
        for name in ("report.json", "report.md", "report.png"):
            assert (run_dir / name).stat().st_size > 0
        assert (run_dir / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

        calls = len(FakeEngine.calls)
        evaluate(client, "always-b", config, data_dir=DATA, run_dir=run_dir, backend=backend)
        assert len(FakeEngine.calls) == calls  # everything came from the results file

        bigger = RunConfig(("medqa",), mode="generative", limit=9, seed=0, max_tokens=32)
        _, summary = evaluate(
            client, "always-b", bigger, data_dir=DATA, run_dir=run_dir, backend=backend
        )
        assert len(FakeEngine.calls) == calls + 3  # the first 6 of 9 were already scored
        assert summary["benchmarks"]["medqa"]["correct"] == _expected_b(9)


def test_a_torn_last_line_is_scored_again(tmp_path: Path) -> None:
    config = RunConfig(("pubmedqa",), mode="generative", limit=3, max_tokens=8)
    with _client(tmp_path) as client:
        backend = ClientBackend(client, "rambler", parallel=1)
        run_dir, summary = evaluate(
            client, "rambler", config, data_dir=DATA, run_dir=tmp_path / "r", backend=backend
        )
        assert summary["benchmarks"]["pubmedqa"]["unparsed"] == 3  # counted wrong, reported
        assert summary["benchmarks"]["pubmedqa"]["correct"] == 0
        results = run_dir / "results.jsonl"
        lines = results.read_text().splitlines()
        results.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:25])  # crash mid-write
        calls = len(FakeEngine.calls)
        _, again = evaluate(
            client, "rambler", config, data_dir=DATA, run_dir=run_dir, backend=backend
        )
        assert len(FakeEngine.calls) == calls + 1
        assert again["benchmarks"]["pubmedqa"]["n"] == 3


def test_compare_pairs_the_same_items(tmp_path: Path) -> None:
    config = RunConfig(("medqa", "mmlu_medical"), mode="generative", limit=8, max_tokens=8)
    with _client(tmp_path) as client:
        for model in ("always-a", "always-b"):
            evaluate(client, model, config, data_dir=DATA, run_dir=tmp_path / model,
                     backend=ClientBackend(client, model))  # fmt: skip
    a, b = load_run(tmp_path / "always-a"), load_run(tmp_path / "always-b")
    result = compare(a, b)
    for name in ("medqa", "mmlu_medical"):
        c = result["benchmarks"][name]
        answers = [r["answer"] for r in a.rows[name].values()]
        assert c["n"] == 8
        assert c["difference"] == pytest.approx((answers.count("B") - answers.count("A")) / 8)
        assert c["b_right_a_wrong"] == answers.count("B")
        assert c["ci95"][0] <= c["difference"] <= c["ci95"][1]
    paths = write_reports([a, b], tmp_path / "both", stem="comparison")
    assert (
        "always-a" in paths["markdown"].read_text() and "always-b" in paths["markdown"].read_text()
    )

    other = RunConfig(("pubmedqa",), mode="generative", limit=2, max_tokens=8)
    with _client(tmp_path) as client:
        evaluate(client, "always-a", other, data_dir=DATA, run_dir=tmp_path / "p",
                 backend=ClientBackend(client, "always-a"))  # fmt: skip
    with pytest.raises(IncomparableRunsError):
        compare(a, load_run(tmp_path / "p"))
    with pytest.raises(EvalRunNotFoundError):
        load_run(tmp_path / "nowhere")


def test_cli_report_compare_and_errors(tmp_path: Path) -> None:
    config = RunConfig(("medqa",), mode="generative", limit=4, max_tokens=8)
    with _client(tmp_path) as client:
        for model in ("always-a", "always-b"):
            evaluate(client, model, config, data_dir=DATA, run_dir=tmp_path / model,
                     backend=ClientBackend(client, model))  # fmt: skip
    runner = CliRunner()
    out = runner.invoke(
        cli, ["eval", "compare", str(tmp_path / "always-a"), str(tmp_path / "always-b"), "--json"]
    )
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["benchmarks"]["medqa"]["n"] == 4
    out = runner.invoke(cli, ["eval", "report", str(tmp_path / "always-a"), str(tmp_path / "always-b"),
                              "--out", str(tmp_path / "rep")])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert (tmp_path / "rep" / "comparison.png").is_file()
    out = runner.invoke(cli, ["eval", "report", str(tmp_path / "missing")])
    assert out.exit_code == 56 and "no evaluation run" in out.output
    out = runner.invoke(cli, ["eval", "run", "-m", "x", "-b", "nope"])
    assert out.exit_code == 9 and "unknown benchmark" in out.output


def test_fake_engine_reports_scripted_logprobs(tmp_path: Path) -> None:
    with Terminus(memory_budget="1G", allow_download=False) as client:
        client.catalog.register(
            fake_card(
                tmp_path / "w",
                "lp",
                replies=["B"],
                next_token_logprobs={" A": -2.0, "B": -0.1, " C": -3.0},
            )
        )
        done = client.completion("q", model="lp", top_logprobs=2).result()
    assert done.text == "B"
    assert [(t.token, t.logprob) for t in done.logprobs[0].top] == [("B", -0.1), (" A", -2.0)]


def test_both_logprob_shapes_parse() -> None:
    legacy = {"top_logprobs": [{" A": -0.5, " B": -1.5}]}
    llama = {"content": [{"token": " A", "logprob": -0.5,
                          "top_logprobs": [{"token": " A", "logprob": -0.5}, {"token": " B", "logprob": -1.5}]}]}  # fmt: skip
    assert parse_top_logprobs(legacy) == parse_top_logprobs(llama) == {" A": -0.5, " B": -1.5}
