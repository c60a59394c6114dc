"""``terminus eval``: score models on medical benchmarks and HealthBench, report, compare."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from terminus.cli.context import CliState, pass_state
from terminus.eval.prompts import DEFAULT_TOP_LOGPROBS

_DIR = click.Path(file_okay=False, path_type=Path)


@click.group(name="eval")
def eval_group() -> None:
    """Re-run medical benchmark ladders on any model Terminus reaches, and compare runs.

    \b
    Examples:
      terminus eval run -m smollm2 --data-dir ./medbench --limit 100 --seed 0
      terminus eval run -m qwen --mode generative -b medqa,pubmedqa --limit 50
      terminus eval run -m my-model --base-url http://127.0.0.1:8080/v1 -b medqa
      terminus eval report RUN_DIR [RUN_DIR...] --out ./report
      terminus eval compare RUN_A RUN_B
      terminus eval healthbench -m qwen --judge qwen --file healthbench.jsonl --limit 20
    """


@eval_group.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print the benchmarks as JSON.")
def list_benchmarks(as_json: bool) -> None:
    """The benchmarks, and the file names --data-dir is searched for."""
    from terminus.eval.datasets import BENCHMARKS

    if as_json:
        rows = [
            {
                "name": spec.name,
                "title": spec.title,
                "files": list(spec.files),
                "url": spec.published.url if spec.published else None,
            }
            for spec in BENCHMARKS.values()
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    for spec in BENCHMARKS.values():
        fetch = "fetchable" if spec.published else "--data-dir only"
        click.echo(f"{spec.name:<16} {spec.title:<30} {fetch:<16} {', '.join(spec.files)}")


@eval_group.command()
@click.option(
    "-m",
    "--model",
    required=True,
    metavar="MODEL",
    help="Model id or alias (or the endpoint's model name).",
)
@click.option(
    "-b",
    "--benchmarks",
    default="local",
    show_default=True,
    metavar="LIST",
    help="Comma-separated names (see `terminus eval list`), 'all' for the seven, or 'local' "
    "for those found in --data-dir.",
)
@click.option(
    "--mode",
    type=click.Choice(["loglikelihood", "generative"]),
    default="loglikelihood",
    show_default=True,
    help="Score the option letters' log-probabilities (lm-eval style), or let the model "
    "write an answer ending in 'Answer: X'.",
)
@click.option("--limit", type=click.IntRange(min=1), help="Items per benchmark (a seeded subset).")
@click.option("--seed", type=int, default=0, show_default=True, help="Chooses the subset.")
@click.option("--data-dir", type=_DIR, help="Folder holding the benchmark files.")
@click.option(
    "--file",
    "files",
    multiple=True,
    metavar="BENCH=PATH",
    help="Read BENCH from PATH whatever its name (a held-out or renamed copy); repeatable. "
    "Nothing is fetched for it.",
)
@click.option(
    "--out",
    "run_dir",
    type=_DIR,
    help="Run folder [default: in the Terminus home; rerun to resume].",
)
@click.option(
    "--parallel",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Items in flight at once (with --peer: per provider).",
)
@click.option(
    "--peer",
    "peers",
    multiple=True,
    metavar="REF",
    help="Score on provider peers instead (repeatable): items are shared out across the "
    "pool, each to the least busy provider.",
)
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads for a local model.")
@click.option(
    "--max-tokens",
    type=click.IntRange(min=1),
    default=512,
    show_default=True,
    help="Answer length (generative).",
)
@click.option(
    "--top-logprobs",
    type=click.IntRange(min=2, max=1000),
    default=DEFAULT_TOP_LOGPROBS,
    show_default=True,
    help="Alternatives read per item (loglikelihood); endpoints that cap it (vLLM: 20) "
    "need a lower value.",
)
@click.option(
    "--fewshot",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Examples held out of each file (seeded) and answered before every item.",
)
@click.option(
    "--prompt-template",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A file with the prompt wording: {context} {question} {options} {keys}.",
)
@click.option(
    "--circular", is_flag=True, help="CircularEval: right only under every rotation of the options."
)
@click.option(
    "--samples",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Answers sampled per item (generative, --temperature > 0): mean@k with a CI across seeds.",
)
@click.option(
    "--temperature",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Sampling temperature (generative); 0 is greedy.",
)
@click.option(
    "--thinking-budget",
    type=click.IntRange(min=1),
    metavar="TOKENS",
    help="Generative: reasoning capped at TOKENS, then closed; the answer gets --max-tokens more.",
)
@click.option(
    "--base-url", metavar="URL", help="Evaluate a model behind an OpenAI-compatible API instead."
)
@click.option(
    "--api-key",
    envvar="TERMINUS_EVAL_API_KEY",
    help="Key for --base-url [env TERMINUS_EVAL_API_KEY].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary (report.json) instead.")
@pass_state
def run(
    state: CliState,
    model: str,
    benchmarks: str,
    mode: str,
    limit: int | None,
    seed: int,
    data_dir: Path | None,
    files: tuple[str, ...],
    run_dir: Path | None,
    parallel: int,
    threads: int | None,
    max_tokens: int,
    top_logprobs: int,
    fewshot: int,
    prompt_template: Path | None,
    circular: bool,
    samples: int,
    temperature: float,
    thinking_budget: int | None,
    base_url: str | None,
    api_key: str | None,
    as_json: bool,
    peers: tuple[str, ...],
) -> None:
    """Score MODEL on the benchmarks; writes report.json, report.md and report.png.

    Results are stored per item as they finish, so an interrupted run resumes
    when the same command runs again.
    """
    from terminus.eval.api import backend_for, evaluate
    from terminus.eval.backends import EvalBackend
    from terminus.eval.datasets import parse_file_overrides
    from terminus.eval.report import markdown
    from terminus.eval.runner import RunConfig

    client = state.client()
    overrides = parse_file_overrides(files)
    if peers:
        if base_url:
            raise click.UsageError("--peer and --base-url name two different places to run")
        from terminus.cli.node import use_peer

        use_peer(state, peers, False)
        parallel *= len(peers)  # each provider keeps --parallel items in flight
    config = RunConfig(
        benchmarks=_benchmark_names(benchmarks, data_dir, overrides),
        mode=mode,  # type: ignore[arg-type]
        limit=limit,
        seed=seed,
        max_tokens=max_tokens,
        top_logprobs=top_logprobs,
        fewshot=fewshot,
        template=prompt_template.read_text(encoding="utf-8") if prompt_template else None,
        circular=circular,
        samples=samples,
        temperature=temperature,
        thinking_budget=thinking_budget,
    )

    def backend() -> EvalBackend:
        return backend_for(
            client, model, base_url=base_url, api_key=api_key, parallel=parallel, threads=threads
        )

    folder, summary = evaluate(
        client,
        model,
        config,
        data_dir=data_dir,
        files=overrides,
        run_dir=run_dir,
        backend=backend,
        progress=sys.stderr.isatty(),
    )
    if as_json:
        click.echo(json.dumps({**summary, "run_dir": str(folder)}, indent=2))
        return
    for name, data in summary["data"].items():
        click.echo(f"{name}: read {data['source']} (sha256 {data['sha256']})")
    click.echo(markdown([summary]))
    click.echo(f"run: {folder}")


def _benchmark_names(
    value: str, data_dir: Path | None, files: dict[str, Path] | None = None
) -> tuple[str, ...]:
    from terminus.errors import InvalidParameterError
    from terminus.eval.datasets import BENCHMARKS, benchmark

    if value == "all":
        return tuple(BENCHMARKS)
    if value == "local" and files and data_dir is None:
        return tuple(name for name in BENCHMARKS if name in files)
    if value == "local":
        if data_dir is None:
            raise InvalidParameterError("-b local needs --data-dir", hint="or name the benchmarks")
        found = tuple(
            name
            for name, spec in BENCHMARKS.items()
            if any((data_dir / f).is_file() for f in spec.files) or name in (files or {})
        )
        if not found:
            raise InvalidParameterError(
                f"no benchmark files in {data_dir}", hint="see `terminus eval list`"
            )
        return found
    return tuple(benchmark(name.strip()).name for name in value.split(",") if name.strip())


@eval_group.command()
@click.option(
    "-m",
    "--model",
    "models",
    multiple=True,
    required=True,
    metavar="MODEL",
    help="A model of the grid; repeat for several (smallest first reads best).",
)
@click.option(
    "-q",
    "--quant",
    "quants",
    multiple=True,
    metavar="TYPE",
    help="Also score each model quantized to TYPE (made with terminus quantize "
    "unless MODEL-TYPE is cached), or only MODEL with MODEL=TYPE; repeatable.",
)
@click.option(
    "-b",
    "--benchmarks",
    default="local",
    show_default=True,
    metavar="LIST",
    help="As for `eval run`.",
)
@click.option(
    "--mode",
    type=click.Choice(["loglikelihood", "generative"]),
    default="loglikelihood",
    show_default=True,
)
@click.option("--limit", type=click.IntRange(min=1), help="Items per benchmark (a seeded subset).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--data-dir", type=_DIR, help="Folder holding the benchmark files.")
@click.option(
    "--file",
    "files",
    multiple=True,
    metavar="BENCH=PATH",
    help="Read BENCH from PATH whatever its name; repeatable.",
)
@click.option(
    "--out",
    "out_dir",
    type=_DIR,
    help="Ladder folder: runs/, ladder_report.{html,md,json}, ladder_size.png "
    "[default: $TERMINUS_HOME/eval/ladders/…, shown in the web app].",
)
@click.option("--parallel", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads for local models.")
@click.option("--max-tokens", type=click.IntRange(min=1), default=512, show_default=True)
@pass_state
def ladder(
    state: CliState,
    models: tuple[str, ...],
    quants: tuple[str, ...],
    benchmarks: str,
    mode: str,
    limit: int | None,
    seed: int,
    data_dir: Path | None,
    files: tuple[str, ...],
    out_dir: Path | None,
    parallel: int,
    threads: int | None,
    max_tokens: int,
) -> None:
    """Score a grid of MODELS × quantizations × benchmarks on the same items; write one
    HTML report (table, accuracy vs size, paired quantization deltas, baselines).

    Every cell is a resumable run under OUT/runs; run the command again to resume.
    """
    from terminus.eval.datasets import parse_file_overrides
    from terminus.eval.ladder import default_ladder_dir, run_ladder
    from terminus.eval.ladder_report import write_ladder_report
    from terminus.eval.runner import RunConfig
    from terminus.quantize.rules import scheme

    for quant in quants:
        scheme(quant.rpartition("=")[2])  # an unknown type fails before anything runs
    client = state.client()
    overrides = parse_file_overrides(files)
    config = RunConfig(
        benchmarks=_benchmark_names(benchmarks, data_dir, overrides),
        mode=mode,  # type: ignore[arg-type]
        limit=limit,
        seed=seed,
        max_tokens=max_tokens,
    )
    out_dir = out_dir or default_ladder_dir(client.home, models, quants, config)
    run_ladder(client, models, quants, config, out_dir, data_dir=data_dir, files=overrides,
               parallel=parallel, threads=threads, say=lambda m: click.echo(m, err=True),
               progress=sys.stderr.isatty())  # fmt: skip
    paths = write_ladder_report(out_dir)
    click.echo(paths["markdown"].read_text(encoding="utf-8"))
    click.echo("wrote " + ", ".join(str(p) for p in paths.values()))


@eval_group.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out_dir",
    type=_DIR,
    help="Where to write report.{json,md,png} [default: the first run's folder].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summaries as JSON.")
def report(runs: tuple[Path, ...], out_dir: Path | None, as_json: bool) -> None:
    """Summarize one or more RUNS side by side: JSON, one Markdown table with a column per
    run, and a PNG chart."""
    from terminus.eval.report import load_run, markdown, summaries, write_reports

    loaded = [load_run(path) for path in runs]
    target = out_dir or loaded[0].path
    paths = write_reports(loaded, target, stem="report" if len(loaded) == 1 else "comparison")
    if as_json:
        click.echo(json.dumps(summaries(loaded), indent=2))
        return
    click.echo(markdown(summaries(loaded)))
    click.echo("wrote " + ", ".join(str(p) for p in paths.values()))


@eval_group.command()
@click.argument("run_a", type=click.Path(path_type=Path))
@click.argument("run_b", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def compare(run_a: Path, run_b: Path, as_json: bool) -> None:
    """Accuracy of RUN_B minus RUN_A per benchmark, on the items both scored (paired 95% CI).

    Use it to score a quantized model against its base: run both with the same
    --limit and --seed, then compare.
    """
    from terminus.eval.report import compare as compare_runs
    from terminus.eval.report import compare_markdown, load_run

    result = compare_runs(load_run(run_a), load_run(run_b))
    click.echo(json.dumps(result, indent=2) if as_json else compare_markdown(result))


@eval_group.command()
@click.option("-m", "--model", required=True, metavar="MODEL", help="The model answering.")
@click.option(
    "--judge",
    "judges",
    required=True,
    multiple=True,
    metavar="MODEL",
    help="The grading model (named in the report); repeat to grade the same answers with "
    "several judges side by side (--judge-base-url applies to the first).",
)
@click.option(
    "--file",
    "data_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A HealthBench JSONL file.",
)
@click.option(
    "--variant",
    type=click.Choice(["all", "hard", "consensus"]),
    default="all",
    show_default=True,
    help="Published file to fetch when no --file.",
)
@click.option("--limit", type=click.IntRange(min=1), help="Examples (a seeded subset).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--max-tokens", type=click.IntRange(min=1), default=1024, show_default=True)
@click.option("--out", "run_dir", type=_DIR, help="Run folder [default: in the Terminus home].")
@click.option("--parallel", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--base-url", metavar="URL", help="OpenAI-compatible endpoint for the model.")
@click.option("--judge-base-url", metavar="URL", help="OpenAI-compatible endpoint for the judge.")
@click.option("--api-key", envvar="TERMINUS_EVAL_API_KEY", help="Key for the endpoints.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_state
def healthbench(
    state: CliState,
    model: str,
    judges: tuple[str, ...],
    data_file: Path | None,
    variant: str,
    limit: int | None,
    seed: int,
    max_tokens: int,
    run_dir: Path | None,
    parallel: int,
    base_url: str | None,
    judge_base_url: str | None,
    api_key: str | None,
    as_json: bool,
) -> None:
    """Grade MODEL's answers to HealthBench conversations with a JUDGE model, as simple-evals does."""
    from terminus.eval.api import backend_for
    from terminus.eval.datasets import fetch
    from terminus.eval.healthbench import VARIANTS, load_examples
    from terminus.eval.healthbench_run import (
        healthbench_markdown,
        judges_side_by_side,
        run_healthbench,
    )

    client = state.client()
    if data_file is None:
        source = VARIANTS[variant]
        data_file = fetch(
            source, client.home, client.manager.allow_download, f"healthbench-{variant}.jsonl"
        )
    answering = backend_for(client, model, base_url=base_url, api_key=api_key, parallel=parallel)
    name = f"healthbench-{model}-by-{'-'.join(judges)}-s{seed}".replace("/", "-")
    folder = run_dir or client.home / "eval" / "runs" / name
    results = []
    for index, judge in enumerate(judges):
        grading = backend_for(
            client,
            judge,
            base_url=judge_base_url if index == 0 else None,
            api_key=api_key,
            parallel=parallel,
        )
        results.append(
            run_healthbench(
                answering,
                grading,
                load_examples(data_file),
                folder,  # one folder: every judge grades the same stored answers
                limit=limit,
                seed=seed,
                max_tokens=max_tokens,
                data_source=str(data_file),
                progress=sys.stderr.isatty(),
                report_file="healthbench.json"
                if index == 0
                else f"healthbench-judge{index + 1}.json",
            )
        )
    result = results[0]
    if as_json:
        payload = result if len(results) == 1 else {"judges": results}
        click.echo(json.dumps({**payload, "run_dir": str(folder)}, indent=2))
        return
    if len(results) > 1:
        click.echo(judges_side_by_side(results))
        click.echo(f"run: {folder}")
        return
    click.echo(healthbench_markdown(result))
    click.echo(f"run: {folder}")


def _add_calibration() -> None:
    from terminus.cli.eval_calibrate import healthbench_calibrate

    eval_group.add_command(healthbench_calibrate)


_add_calibration()
