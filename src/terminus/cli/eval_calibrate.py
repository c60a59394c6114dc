"""``terminus eval healthbench-calibrate``: a judge's agreement with HealthBench's physicians."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from terminus.cli.context import CliState, pass_state
from terminus.errors import SourceUnavailableError


@click.command(name="healthbench-calibrate")
@click.option("--judge", required=True, metavar="MODEL", help="The grading model to calibrate.")
@click.option(
    "--file",
    "data_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="HealthBench's meta-evaluation JSONL [default: fetch the published file].",
)
@click.option("--limit", type=click.IntRange(min=1), help="Rows graded (a seeded subset).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--out", "run_dir", type=click.Path(file_okay=False, path_type=Path), help="Run folder."
)
@click.option("--parallel", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--judge-base-url", metavar="URL", help="OpenAI-compatible endpoint for the judge.")
@click.option("--api-key", envvar="TERMINUS_EVAL_API_KEY", help="Key for the endpoint.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_state
def healthbench_calibrate(
    state: CliState,
    judge: str,
    data_file: Path | None,
    limit: int | None,
    seed: int,
    run_dir: Path | None,
    parallel: int,
    judge_base_url: str | None,
    api_key: str | None,
    as_json: bool,
) -> None:
    """Grade physician-labelled answers with JUDGE; report its agreement with the physicians
    next to theirs with each other (simple-evals' HealthBench meta-evaluation)."""
    from terminus.eval.api import backend_for
    from terminus.eval.datasets import fetch
    from terminus.eval.healthbench_meta import (
        META,
        calibration_markdown,
        load_meta,
        run_calibration,
    )

    client = state.client()
    if data_file is None:
        try:
            data_file = fetch(
                META, client.home, client.manager.allow_download, "healthbench-meta.jsonl"
            )
        except SourceUnavailableError as exc:
            raise SourceUnavailableError(
                str(exc), hint="pass --file with HealthBench's meta-evaluation JSONL"
            ) from exc
    rows = load_meta(data_file)
    grading = backend_for(
        client, judge, base_url=judge_base_url, api_key=api_key, parallel=parallel
    )
    name = f"healthbench-calibration-{judge}-s{seed}".replace("/", "-")
    folder = run_dir or client.home / "eval" / "runs" / name
    report = run_calibration(
        grading,
        rows,
        folder,
        limit=limit,
        seed=seed,
        data_source=str(data_file),
        progress=sys.stderr.isatty(),
    )
    if as_json:
        click.echo(json.dumps({**report, "run_dir": str(folder)}, indent=2))
        return
    click.echo(calibration_markdown(report))
    click.echo(f"run: {folder}")
