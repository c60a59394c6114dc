"""The harness in a few calls: pick a backend, load data, run, write the reports.

>>> with Terminus() as t:
...     run_dir, summary = evaluate(t, "smollm2", RunConfig(("medqa",), limit=50))
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from terminus.errors import InvalidParameterError
from terminus.eval.backends import ClientBackend, EvalBackend, OpenAIBackend
from terminus.eval.datasets import load_benchmark
from terminus.eval.report import load_run, summarize, write_reports
from terminus.eval.runner import RunConfig, run_eval

if TYPE_CHECKING:
    from terminus.client.sync import Terminus


def backend_for(
    client: Terminus,
    model: str,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    parallel: int = 4,
    threads: int | None = None,
    context_length: int | None = None,
) -> EvalBackend:
    """An OpenAI-compatible endpoint when ``base_url`` is given, else the client's model
    (loaded now with ``parallel`` slots, so several items are in flight at once)."""
    if base_url:
        return OpenAIBackend(base_url, model, api_key=api_key, parallel=parallel)
    client.load_model(model, parallel=parallel, threads=threads, context_length=context_length)
    return ClientBackend(client, model, parallel=parallel)


def default_run_dir(home: Path, label: str, config: RunConfig) -> Path:
    """Same model and settings → same folder, so running the command again resumes."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-")
    limit = "all" if config.limit is None else str(config.limit)
    return home / "eval" / "runs" / f"{slug}-{config.mode}-n{limit}-s{config.seed}"


def evaluate(
    client: Terminus,
    model: str,
    config: RunConfig,
    *,
    data_dir: Path | None = None,
    files: Mapping[str, Path] | None = None,
    run_dir: Path | None = None,
    backend: EvalBackend | Callable[[], EvalBackend] | None = None,
    progress: bool = False,
) -> tuple[Path, dict[str, Any]]:
    """Run ``config`` on ``model`` and write report.{json,md,png} into the run folder.

    ``backend`` may be a factory: it is called after the data loaded, so a missing file
    fails before a model is loaded. ``files`` maps a benchmark to the file to read for it
    (a held-out or renamed copy), whatever its name; the report names the file read.
    """
    files = files or {}
    unknown = set(files) - set(config.benchmarks)
    if unknown:
        raise InvalidParameterError(
            f"--file names {', '.join(sorted(unknown))}, which this run does not score"
        )
    data = {
        name: load_benchmark(
            name,
            data_dir,
            client.home,
            allow_download=client.manager.allow_download,
            file=files.get(name),
        )
        for name in config.benchmarks
    }
    chosen: EvalBackend
    if backend is None:
        chosen = backend_for(client, model)
    elif isinstance(backend, ClientBackend | OpenAIBackend) or hasattr(backend, "describe"):
        chosen = backend  # type: ignore[assignment]
    else:
        chosen = backend()
    run_dir = run_dir or default_run_dir(client.home, chosen.label, config)
    run_eval(chosen, config, data, run_dir, progress=progress)
    run = load_run(run_dir)
    write_reports([run], run_dir)
    return run_dir, summarize(run)
