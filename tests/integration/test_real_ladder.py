"""A ladder on the real SmolLM2 and its Q8_0 re-encoding: provenance, lineage warning,
model size, paired delta and the HTML report all from real runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from realmodel import MODEL

from terminus import Terminus, __version__
from terminus.eval.datasets import file_sha256
from terminus.eval.ladder import load_ladder, run_ladder
from terminus.eval.runner import RunConfig

pytestmark = pytest.mark.real
DATA = Path(__file__).parents[1] / "data" / "medbench"


def test_real_ladder_with_a_requantized_rung(client: Terminus, tmp_path: Path) -> None:
    config = RunConfig(("medqa",), mode="loglikelihood", limit=3, seed=0)
    run_ladder(client, [MODEL], ["Q8_0"], config, tmp_path, data_dir=DATA, parallel=1, threads=1)
    ladder, summaries, deltas = load_ladder(tmp_path)
    base, q8 = summaries
    assert (
        base["model"]["sha256"]
        == "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    )
    assert (
        base["software"]["terminus"] == __version__
        and base["software"]["engine_builds"]["xllamacpp"]
    )
    assert base["data"]["medqa"]["sha256"] == file_sha256(DATA / "medqa_usmle_4opt_test.jsonl")
    lineage = q8["model"]["lineage"]
    assert lineage["source_sha256"] == base["model"]["sha256"] and lineage["source_type"] == "Q4_1"
    assert "already Q4_1" in lineage["warning"]
    assert q8["model"]["quantization"] == "Q8_0"
    assert 120e6 < ladder["cells"][0]["parameters"] < 180e6  # SmolLM2-135M
    (delta,) = deltas
    medqa = delta["benchmarks"]["medqa"]
    assert medqa["n"] == 3 and medqa["ci95"][0] <= medqa["difference"] <= medqa["ci95"][1]
    page = (tmp_path / "ladder_report.html").read_text()
    assert "already Q4_1" in page and "data:image/png;base64," in page
    assert "Q8_0 ⚠ from Q4_1" in page
    report = json.loads((tmp_path / "ladder_report.json").read_text())
    assert len(report["summaries"]) == 2


def test_real_fewshot_circular_loglikelihood(client: Terminus, tmp_path: Path) -> None:
    """Two held-out examples before each item, every rotation asked, on SmolLM2's own numbers."""
    from terminus.eval.api import evaluate
    from terminus.eval.backends import ClientBackend
    from terminus.eval.report import load_run

    config = RunConfig(("medqa",), mode="loglikelihood", limit=2, seed=0, fewshot=2, circular=True)
    _, summary = evaluate(client, MODEL, config, data_dir=DATA, run_dir=tmp_path,
                          backend=ClientBackend(client, MODEL, parallel=1))  # fmt: skip
    medqa = summary["benchmarks"]["medqa"]
    assert medqa["n"] == 2 and medqa["circular"]
    assert medqa["accuracy"] <= medqa["first_rotation_accuracy"]
    for row in load_run(tmp_path).rows["medqa"].values():
        assert len(row["rotations"]) == 4 and row["correct"] == all(
            p == row["answer"] for p in row["rotations"]
        )
        assert row["prompt_tokens"] > 4 * 400  # four rotations, each with two examples first
    meta = json.loads((tmp_path / "run.json").read_text())
    assert meta["prompt"]["first_item"]["medqa"].count("Question: ") == 3
