"""A ladder on scripted models: grid, resume, HTML report, deltas against the base."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakecards import fake_card

from terminus import Terminus
from terminus.cli.main import cli
from terminus.engines.fake import FakeEngine
from terminus.eval.ladder import load_ladder, rungs

DATA = Path(__file__).parents[1] / "data" / "medbench"


def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERMINUS_HOME", str(tmp_path / "home"))
    client = Terminus(memory_budget="1G", allow_download=False)
    for name, reply in (("always-a", "Answer: A"), ("always-b", "Answer: B"),
                        ("always-b-q8-0", "Answer: A")):  # fmt: skip
        client.catalog.save_user_card(
            fake_card(tmp_path / "w", name, replies=[reply], user_added=True)
        )
    client.close()


def test_rungs_put_each_quantization_after_its_model() -> None:
    grid = rungs(["a", "b"], ["Q8_0"])
    assert [(r.model, r.base, r.quantization) for r in grid] == [
        ("a", "a", None), ("a-q8-0", "a", "Q8_0"), ("b", "b", None), ("b-q8-0", "b", "Q8_0"),
    ]  # fmt: skip
    only_b = rungs(["a", "b"], ["b=q4_0"])
    assert [r.model for r in only_b] == ["a", "b", "b-q4-0"]


def test_ladder_cli_writes_one_html_report_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _home(tmp_path, monkeypatch)
    args = ["--offline", "eval", "ladder", "-m", "always-a", "-m", "always-b", "-q", "Q8_0",
            "-b", "medqa,mmlu_medical", "--mode", "generative", "--limit", "6",
            "--max-tokens", "8", "--data-dir", str(DATA), "--out", str(tmp_path / "lad")]  # fmt: skip
    # always-a-q8-0 does not exist and a fake model cannot be quantized: a clear error.
    out = CliRunner().invoke(cli, args)
    assert out.exit_code != 0 and "always-a" in out.output
    args[args.index("always-a") - 1 : args.index("always-a") + 1] = []  # drop -m always-a
    out = CliRunner().invoke(cli, args)
    assert out.exit_code == 0, out.output
    assert (
        "| model | parameters | quantization | medqa | mmlu_medical | average | n |" in out.output
    )

    ladder, summaries, deltas = load_ladder(tmp_path / "lad")
    assert [c["model"] for c in ladder["cells"]] == ["always-b", "always-b-q8-0"]
    (delta,) = deltas
    medqa = delta["benchmarks"]["medqa"]
    answers = [s for s in summaries if s["run"] == "always-b"][0]["benchmarks"]["medqa"]
    assert medqa["n"] == 6 and medqa["accuracy_a"] == answers["accuracy"]
    assert medqa["ci95"][0] <= medqa["difference"] <= medqa["ci95"][1]

    page = (tmp_path / "lad" / "ladder_report.html").read_text()
    for needle in ("id=\"ladder-table\"", "id=\"ladder-deltas\"", "id=\"ladder-baselines\"",
                   "always-b-q8-0 − always-b", "⚠ answered B on 6/6"):  # fmt: skip
        assert needle in page
    report = json.loads((tmp_path / "lad" / "ladder_report.json").read_text())
    assert report["summaries"][0]["benchmarks"]["medqa"]["n"] == 6

    calls = len(FakeEngine.calls)
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0 and len(FakeEngine.calls) == calls  # every cell resumed
