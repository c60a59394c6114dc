"""Summaries of runs: JSON, a Markdown table, a PNG chart; paired comparison of two runs."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from terminus.errors import EvalRunNotFoundError, IncomparableRunsError
from terminus.eval.runner import RUN_FILE, write_json
from terminus.eval.stats import paired_difference, wilson_interval
from terminus.eval.store import RESULTS_FILE, read_results

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Run:
    path: Path
    meta: dict[str, Any]
    rows: dict[str, dict[str, dict[str, Any]]]  # benchmark → item id → result

    @property
    def name(self) -> str:
        model = self.meta["model"]
        quant = model.get("quantization")
        return f"{self.meta['label']}" + (
            f" ({quant})" if quant and quant not in self.meta["label"] else ""
        )


def load_run(path: Path) -> Run:
    """A run directory (or its run.json), with the results of its configuration and items."""
    run_dir = path.parent if path.name == RUN_FILE else path
    meta_path = run_dir / RUN_FILE
    if not meta_path.is_file():
        raise EvalRunNotFoundError(f"no evaluation run at {path} (no {RUN_FILE})")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    wanted = {name: set(d["item_ids"]) for name, d in meta["data"].items()}
    rows: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in wanted}
    for row in read_results(run_dir / RESULTS_FILE):
        if row.get("key") == meta["key"] and row["id"] in wanted.get(row["benchmark"], ()):
            rows[row["benchmark"]][row["id"]] = row
    return Run(run_dir, meta, rows)


def summarize(run: Run) -> dict[str, Any]:
    benchmarks: dict[str, Any] = {}
    for name, results in run.rows.items():
        values = list(results.values())
        n = len(values)
        correct = sum(1 for r in values if r["correct"])
        interval = wilson_interval(correct, n)
        entry: dict[str, Any] = {
            "n": n,
            "planned": len(run.meta["data"][name]["item_ids"]),
            "correct": correct,
            "accuracy": interval.estimate,
            "ci95": [interval.low, interval.high],
            "unparsed": sum(1 for r in values if not r["parsed"]),
            "prompt_tokens": sum(int(r.get("prompt_tokens", 0)) for r in values),
            "completion_tokens": sum(int(r.get("completion_tokens", 0)) for r in values),
            "item_seconds": round(sum(float(r.get("seconds", 0.0)) for r in values), 3),
            "wall_seconds": run.meta.get("wall_seconds", {}).get(name),
        }
        if run.meta["config"]["mode"] == "loglikelihood":
            entry["acc_norm"] = sum(1 for r in values if r.get("correct_norm")) / n if n else 0.0
            entry["options_outside_top_k"] = sum(int(r.get("outside_top_k", 0)) for r in values)
        benchmarks[name] = entry
    scored = [b["accuracy"] for b in benchmarks.values() if b["n"]]
    config = run.meta["config"]
    return {
        "model": run.meta["model"],
        "label": run.meta["label"],
        "mode": config["mode"],
        "seed": config["seed"],
        "limit": config["limit"],
        "prompt_version": config["prompt_version"],
        "data": {
            k: {"source": v["source"], "sha256": v["sha256"]} for k, v in run.meta["data"].items()
        },
        "benchmarks": benchmarks,
        "mean_accuracy": sum(scored) / len(scored) if scored else None,
        "benchmarks_in_mean": len(scored),
    }


def markdown(summaries: list[dict[str, Any]]) -> str:
    lines = []
    for s in summaries:
        model = s["model"]
        lines.append(f"### {s['label']}\n")
        lines.append(
            f"mode {s['mode']} · seed {s['seed']} · limit {s['limit']} · prompts {s['prompt_version']}"
            f" · engine {model.get('engine', model.get('backend'))}"
            f" · quantization {model.get('quantization') or 'n/a'}"
            f" · sha256 `{model.get('sha256') or 'n/a'}`\n"
        )
        norm = s["mode"] == "loglikelihood"
        lines.append(
            "| benchmark | accuracy | 95% CI | n | unparsed |"
            + (" acc_norm |" if norm else "")
            + " tokens | time (s) |"
        )
        lines.append("|---|---|---|---|---|" + ("---|" if norm else "") + "---|---|")
        for name, b in s["benchmarks"].items():
            tokens = b["prompt_tokens"] + b["completion_tokens"]
            wall = b["wall_seconds"] if b["wall_seconds"] is not None else b["item_seconds"]
            lines.append(
                f"| {name} | {b['accuracy']:.3f} | {b['ci95'][0]:.3f}–{b['ci95'][1]:.3f} | {b['n']}"
                f" | {b['unparsed']} |"
                + (f" {b['acc_norm']:.3f} |" if norm else "")
                + f" {tokens} | {wall:.1f} |"
            )
        if s["mean_accuracy"] is not None:
            lines.append(
                f"\nUnweighted mean over {s['benchmarks_in_mean']} benchmarks: **{s['mean_accuracy']:.3f}**\n"
            )
    return "\n".join(lines) + "\n"


def chart(summaries: list[dict[str, Any]], path: Path) -> None:
    """Grouped bars (one group per benchmark, one bar per run) with 95 % CI whiskers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(n for s in summaries for n in s["benchmarks"]))
    width = 0.8 / max(1, len(summaries))
    figure, axes = plt.subplots(figsize=(max(6.0, 1.3 * len(names) + 2), 4.5))
    for index, s in enumerate(summaries):
        xs, heights, low, high = [], [], [], []
        for position, name in enumerate(names):
            b = s["benchmarks"].get(name)
            if not b or not b["n"]:
                continue
            xs.append(position + (index - (len(summaries) - 1) / 2) * width)
            heights.append(b["accuracy"])
            low.append(b["accuracy"] - b["ci95"][0])
            high.append(b["ci95"][1] - b["accuracy"])
        axes.bar(xs, heights, width, yerr=[low, high], capsize=3, label=s["label"])
    axes.set_xticks(range(len(names)), names, rotation=20, ha="right")
    axes.set_ylim(0, 1)
    axes.set_ylabel("accuracy (95% CI)")
    axes.legend(fontsize="small")
    figure.tight_layout()
    temporary = path.with_name(path.stem + ".tmp.png")
    figure.savefig(temporary, dpi=110)
    plt.close(figure)
    temporary.replace(path)


def write_reports(runs: list[Run], out_dir: Path, stem: str = "report") -> dict[str, Path]:
    summaries = [summarize(run) for run in runs]
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out_dir / f"{stem}.json",
        "markdown": out_dir / f"{stem}.md",
        "png": out_dir / f"{stem}.png",
    }
    write_json(paths["json"], summaries[0] if len(summaries) == 1 else summaries)
    paths["markdown"].write_text(markdown(summaries), encoding="utf-8")
    try:
        chart(summaries, paths["png"])
    except ImportError:
        log.warning("no PNG chart: matplotlib is missing (pip install 'terminus-sdk[eval]')")
        del paths["png"]
    return paths


def compare(a: Run, b: Run) -> dict[str, Any]:
    """Per benchmark, accuracy of B minus A on the items both scored, with a paired 95 % CI."""
    out: dict[str, Any] = {"a": a.name, "b": b.name, "benchmarks": {}}
    for name in a.rows.keys() & b.rows.keys():
        shared = sorted(a.rows[name].keys() & b.rows[name].keys())
        if not shared:
            continue
        xs = [float(a.rows[name][i]["correct"]) for i in shared]
        ys = [float(b.rows[name][i]["correct"]) for i in shared]
        diff = paired_difference(xs, ys)
        out["benchmarks"][name] = {
            "n": len(shared),
            "accuracy_a": sum(xs) / len(xs),
            "accuracy_b": sum(ys) / len(ys),
            "difference": diff.estimate,
            "ci95": [diff.low, diff.high],
            "b_right_a_wrong": sum(1 for x, y in zip(xs, ys, strict=True) if y > x),
            "a_right_b_wrong": sum(1 for x, y in zip(xs, ys, strict=True) if x > y),
        }
    if not out["benchmarks"]:
        raise IncomparableRunsError(
            f"{a.path} and {b.path} share no scored items",
            hint="run both with the same benchmarks, --limit and --seed",
        )
    return out


def compare_markdown(result: dict[str, Any]) -> str:
    lines = [
        f"B − A, where A = {result['a']} and B = {result['b']} (paired, same items)\n",
        "| benchmark | n | A | B | B − A | 95% CI | B right, A wrong | A right, B wrong |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, c in sorted(result["benchmarks"].items()):
        lines.append(
            f"| {name} | {c['n']} | {c['accuracy_a']:.3f} | {c['accuracy_b']:.3f} | {c['difference']:+.3f}"
            f" | {c['ci95'][0]:+.3f} to {c['ci95'][1]:+.3f} | {c['b_right_a_wrong']} | {c['a_right_b_wrong']} |"
        )
    return "\n".join(lines) + "\n"
