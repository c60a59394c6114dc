"""Reports as a reader sees them: runs side by side, named apart, agreement said plainly."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner
from fakecards import fake_card

from terminus import Terminus
from terminus.cli.main import cli
from terminus.eval.api import evaluate
from terminus.eval.backends import ClientBackend
from terminus.eval.report import chart, load_run, summaries
from terminus.eval.runner import RunConfig

DATA = Path(__file__).parents[1] / "data" / "medbench"
DOCS = Path(__file__).parents[2] / "docs" / "eval.md"
CONFIG = RunConfig(("medqa", "mmlu_medical"), mode="generative", limit=4, max_tokens=8)


def _runs(tmp_path: Path, *folders: tuple[str, str]) -> list[Path]:
    """Score each (model, folder) on the same items; every model always answers B."""
    client = Terminus(memory_budget="1G", allow_download=False)
    for card in (
        fake_card(tmp_path / "w", "always-b", replies=["Answer: B"], user_added=True),
        fake_card(tmp_path / "w", "also-b", replies=["(B)"], user_added=True),
    ):
        client.catalog.save_user_card(card)  # the CLI's own client finds them too
    with client:
        for model, folder in folders:
            evaluate(client, model, CONFIG, data_dir=DATA, run_dir=tmp_path / folder,
                     backend=ClientBackend(client, model))  # fmt: skip
    return [tmp_path / folder for _, folder in folders]


def test_report_puts_runs_in_one_table_with_distinct_names(tmp_path: Path) -> None:
    first, second = _runs(tmp_path, ("always-b", "monday"), ("always-b", "tuesday"))
    result = CliRunner().invoke(
        cli, ["eval", "report", str(first), str(second), "--out", str(tmp_path / "rep")]
    )
    assert result.exit_code == 0, result.output
    table = [line for line in result.stdout.splitlines() if line.startswith("|")]
    assert len([line for line in table if line.startswith("|---")]) == 1  # one table
    header = [cell.strip() for cell in table[0].strip("|").split("|")]
    assert header == ["", "always-b [monday]", "always-b [tuesday]"]
    rows = {line.split("|")[1].strip(): line for line in table}
    assert rows["medqa"].count(", n 4") == 2 and rows["mmlu_medical"].count(", n 4") == 2
    assert (tmp_path / "rep" / "comparison.md").read_text().splitlines()[0] == table[0]

    named = summaries([load_run(first), load_run(second)])
    labels = chart(named, tmp_path / "chart.png")
    assert labels == ["always-b [monday]", "always-b [tuesday]"]  # the PNG's legend
    assert (tmp_path / "chart.png").read_bytes()[:4] == b"\x89PNG"


def test_report_json_lists_each_run(tmp_path: Path) -> None:
    first, second = _runs(tmp_path, ("always-b", "b1"), ("also-b", "b2"))
    result = CliRunner().invoke(cli, ["eval", "report", str(first), str(second), "--json",
                                      "--out", str(tmp_path / "rep")])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [s["run"] for s in data] == ["always-b", "also-b"]
    assert data[0]["benchmarks"]["medqa"]["n"] == 4


def test_compare_says_when_two_runs_agree_on_every_item(tmp_path: Path) -> None:
    first, second = _runs(tmp_path, ("always-b", "b1"), ("always-b", "b2"))
    result = CliRunner().invoke(cli, ["eval", "compare", str(first), str(second)])
    assert result.exit_code == 0, result.output
    assert "always-b [b1] and B = always-b [b2] are identical on 8 items" in result.stdout
    assert "+0.000 to +0.000" not in result.stdout
    # The exact bound from 0 discordant of 4 per benchmark: 1 − 0.025^(1/4) = 0.602.
    assert "no discordant items among 4 (B − A within ±0.602)" in result.stdout


def test_eval_run_json_is_the_summary(tmp_path: Path) -> None:
    _runs(tmp_path, ("always-b", "done"))  # scored already: the command reads the results
    result = CliRunner().invoke(
        cli,
        ["eval", "run", "-m", "always-b", "-b", "medqa,mmlu_medical", "--mode", "generative",
         "--limit", "4", "--max-tokens", "8", "--data-dir", str(DATA),
         "--out", str(tmp_path / "done"), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["run_dir"] == str(tmp_path / "done") and data["benchmarks"]["medqa"]["n"] == 4


def test_top_logprobs_default_is_the_same_in_cli_api_and_docs() -> None:
    from terminus.cli.eval import run

    option = next(p for p in run.params if p.name == "top_logprobs")
    documented = re.search(r"`--top-logprobs` \(default (\d+)[,)]", DOCS.read_text())
    assert documented is not None
    assert option.default == RunConfig(("medqa",)).top_logprobs == int(documented.group(1))
