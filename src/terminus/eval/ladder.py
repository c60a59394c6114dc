"""A ladder: every model × quantization × benchmark on the same items, one report.

Each cell is an ordinary run (its own folder, resumable); quantized variants are made
with ``terminus quantize`` when not cached yet, and their lineage travels into the
report. Paired deltas compare each quantization with the model it was made from.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from terminus.errors import InvalidParameterError, ModelNotFoundError
from terminus.eval.api import backend_for, evaluate
from terminus.eval.report import compare, load_run, summarize
from terminus.eval.runner import RunConfig, write_json

if TYPE_CHECKING:
    from terminus.client.sync import Terminus

LADDER_FILE = "ladder.json"


@dataclass(frozen=True)
class Rung:
    """One model of the grid; ``base`` is the model a quantized rung was made from."""

    model: str
    base: str
    quantization: str | None  # None: the model as shipped


def rungs(models: Sequence[str], quantizations: Sequence[str]) -> list[Rung]:
    """Each model as shipped, then each requested quantization of it.

    A quantization is ``TYPE`` (every model) or ``MODEL=TYPE`` (that model only)."""
    if not models:
        raise InvalidParameterError("a ladder needs at least one model (-m)")
    wanted: list[tuple[str | None, str]] = []
    for value in quantizations:
        model, sep, kind = value.rpartition("=")
        if sep and model not in models:
            raise InvalidParameterError(f"-q {value}: {model} is not one of the ladder's models")
        wanted.append((model if sep else None, kind.upper()))
    out = []
    for model in models:
        out.append(Rung(model, model, None))
        out.extend(
            Rung(f"{model}-{kind.lower().replace('_', '-')}", model, kind)
            for only, kind in wanted
            if only in (None, model)
        )
    return out


def ensure_quantized(client: Terminus, rung: Rung, say: Callable[[str], None]) -> None:
    """Quantize the rung's base unless a model of that id is already in the catalog."""
    if rung.quantization is None:
        return
    try:
        client.catalog.get(rung.model)
        return
    except ModelNotFoundError:
        pass
    say(f"quantizing {rung.base} to {rung.quantization} as {rung.model}")
    client.quantize(rung.base, rung.quantization, model_id=rung.model, on_step=say)


def parameter_count(client: Terminus, model: str) -> int | None:
    """Weights in the model's GGUF (the x axis of accuracy vs size)."""
    try:
        card = client.catalog.get(model)
        path = client.manager.ensure_files(card).main
    except (ModelNotFoundError, OSError):
        return None
    from terminus.models.gguf_io import open_reader

    try:
        return sum(int(t.n_elements) for t in open_reader(path).tensors)
    except (OSError, ValueError):
        return None


def ladders_root(home: Path) -> Path:
    return home / "eval" / "ladders"


def default_ladder_dir(
    home: Path, models: Sequence[str], quantizations: Sequence[str], config: RunConfig
) -> Path:
    """Same grid and settings → same folder, so running the command again resumes."""
    limit = "all" if config.limit is None else str(config.limit)
    name = "_".join([*models, *(q.lower() for q in quantizations)])
    return ladders_root(home) / _slug(f"{name}-{config.mode}-n{limit}-s{config.seed}")


def run_ladder(
    client: Terminus,
    models: Sequence[str],
    quantizations: Sequence[str],
    config: RunConfig,
    out_dir: Path,
    *,
    data_dir: Path | None = None,
    files: Mapping[str, Path] | None = None,
    parallel: int = 4,
    threads: int | None = None,
    say: Callable[[str], None] = lambda _: None,
    progress: bool = False,
) -> dict[str, Any]:
    """Score every rung (resuming what is stored), then write ladder.{json,md,html,png}."""
    grid = rungs(models, quantizations)
    runs_dir = out_dir / "runs"
    cells = []
    for rung in grid:
        ensure_quantized(client, rung, say)
        say(f"scoring {rung.model}")
        folder = runs_dir / _slug(rung.model)

        def backend(model: str = rung.model) -> Any:
            return backend_for(client, model, parallel=parallel, threads=threads)

        evaluate(client, rung.model, config, data_dir=data_dir, files=files,
                 run_dir=folder, backend=backend, progress=progress)  # fmt: skip
        client.unload_model(rung.model)  # one rung in memory at a time
        cells.append({**asdict(rung), "run": str(folder.relative_to(out_dir)),
                      "parameters": parameter_count(client, rung.model)})  # fmt: skip
    ladder = {"config": asdict(config), "cells": cells, "parallel": parallel, "threads": threads}
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / LADDER_FILE, ladder)
    from terminus.eval.ladder_report import write_ladder_report

    write_ladder_report(out_dir)
    return ladder


def load_ladder(out_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """The ladder file, a summary per cell, and the paired deltas of each quantization."""
    path = out_dir / LADDER_FILE
    if not path.is_file():
        from terminus.errors import EvalRunNotFoundError

        raise EvalRunNotFoundError(f"no ladder at {out_dir} (no {LADDER_FILE})")
    ladder = json.loads(path.read_text(encoding="utf-8"))
    runs = {cell["model"]: load_run(out_dir / cell["run"]) for cell in ladder["cells"]}
    summaries = []
    for cell in ladder["cells"]:
        summary = summarize(runs[cell["model"]], cell["model"])
        summaries.append({**summary, "cell": cell})
    deltas = []
    for cell in ladder["cells"]:
        if cell["quantization"] and cell["base"] in runs:
            result = compare(runs[cell["base"]], runs[cell["model"]])
            result.update(a=cell["base"], b=cell["model"])
            deltas.append(result)
    return ladder, summaries, deltas


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")
