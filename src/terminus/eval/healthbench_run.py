"""A resumable HealthBench run and its report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from terminus.eval.backends import EvalBackend
from terminus.eval.healthbench import Example, aggregate, grade_example
from terminus.eval.items import sample
from terminus.eval.runner import progress_bar, write_json
from terminus.eval.store import ResultStore, config_key

REPORT_FILE = "healthbench.json"


def run_healthbench(
    model: EvalBackend,
    judge_model: EvalBackend,
    examples: list[Example],
    run_dir: Path,
    *,
    limit: int | None = None,
    seed: int = 0,
    max_tokens: int = 1024,
    data_source: str = "",
    progress: bool = False,
) -> dict[str, Any]:
    """Grade ``limit`` seeded examples (those already stored for this setup are kept)."""
    setup = {
        "benchmark": "healthbench",
        "model": model.describe(),
        "judge": judge_model.describe(),
        "seed": seed,
        "max_tokens": max_tokens,
    }
    store = ResultStore(run_dir, config_key(setup))
    stored = store.done()
    chosen = sample(examples, limit, seed)
    bar = progress_bar(len(chosen), progress)
    started = time.perf_counter()
    graded: list[dict[str, Any]] = []
    try:
        for example in chosen:
            row = stored.get(("healthbench", example.id))
            if row is None:
                row = grade_example(model, judge_model, example, max_tokens=max_tokens, seed=seed)
                store.append(row)
            graded.append(row)
            bar.update(1)
    finally:
        bar.close()
    report = {
        "benchmark": "healthbench",
        "model": model.describe(),
        "label": model.label,
        "judge": judge_model.label,
        "judge_model": judge_model.describe(),
        "data": data_source,
        "seed": seed,
        "n": len(graded),
        "unscorable": sum(1 for g in graded if g["score"] is None),
        "wall_seconds": round(time.perf_counter() - started, 3),
        **aggregate(graded, seed=seed),
    }
    write_json(run_dir / REPORT_FILE, report)
    return report


def healthbench_markdown(report: dict[str, Any]) -> str:
    overall = report["overall"]
    lines = [
        f"### HealthBench: {report['label']}, graded by {report['judge']}\n",
        f"score **{overall['score']:.3f}** ± {overall['bootstrap_std']:.3f} (bootstrap std),"
        f" n = {overall['n']}\n"
        if overall
        else "no scorable examples\n",
        "| sub-score | score | std | n |",
        "|---|---|---|---|",
    ]
    for group in ("themes", "axes"):
        for tag, s in report[group].items():
            lines.append(f"| {tag} | {s['score']:.3f} | {s['bootstrap_std']:.3f} | {s['n']} |")
    return "\n".join(lines) + "\n"
