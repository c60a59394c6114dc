"""Summaries of runs: JSON, a Markdown table, a PNG chart; paired comparison of two runs."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from terminus.errors import EvalRunNotFoundError, IncomparableRunsError
from terminus.eval.baselines import baseline_text, baselines, prediction_text
from terminus.eval.runner import RUN_FILE, write_json
from terminus.eval.stats import mean_interval, paired_difference, paired_exact, wilson_interval
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


def run_labels(runs: list[Run]) -> list[str]:
    """A distinct name per run: the model (and quantization), then its folder if two share it."""
    names = [run.name for run in runs]
    if len(set(names)) < len(names):
        names = [f"{run.name} [{run.path.name}]" for run in runs]
    if len(set(names)) < len(names):
        names = [f"{run.name} [{run.path}]" for run in runs]
    return names


def summaries(runs: list[Run]) -> list[dict[str, Any]]:
    """Summaries of several runs, each named so that no two read the same."""
    return [summarize(run, label) for run, label in zip(runs, run_labels(runs), strict=True)]


def summarize(run: Run, display: str | None = None) -> dict[str, Any]:
    """``display`` is how reports name the run [default: the model and its quantization]."""
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
            "baselines": baselines(values),
        }
        entry.update(protocol_figures(values))
        if run.meta["config"]["mode"] == "loglikelihood":
            entry["acc_norm"] = sum(1 for r in values if r.get("correct_norm")) / n if n else 0.0
            entry["options_outside_top_k"] = sum(int(r.get("outside_top_k", 0)) for r in values)
        benchmarks[name] = entry
    scored = [b["accuracy"] for b in benchmarks.values() if b["n"]]
    config = run.meta["config"]
    return {
        "model": run.meta["model"],
        "label": run.meta["label"],
        "run": display or run.name,
        "mode": config["mode"],
        "seed": config["seed"],
        "limit": config["limit"],
        "prompt_version": config["prompt_version"],
        "prompt": run.meta.get("prompt"),
        "decoding": run.meta.get("decoding"),
        "parallel": run.meta.get("parallel"),
        "software": run.meta.get("software"),
        "data": {
            k: {"source": v["source"], "sha256": v["sha256"]} for k, v in run.meta["data"].items()
        },
        "benchmarks": benchmarks,
        "mean_accuracy": sum(scored) / len(scored) if scored else None,
        "benchmarks_in_mean": len(scored),
    }


def protocol_figures(values: list[dict[str, Any]]) -> dict[str, Any]:
    """mean@k with a t interval across sampling seeds; CircularEval's first-rotation accuracy."""
    out: dict[str, Any] = {}
    sampled = [r["sample_correct"] for r in values if r.get("sample_correct")]
    if sampled and len(sampled) == len(values):
        k = min(len(s) for s in sampled)
        per_seed = [sum(s[j] for s in sampled) / len(sampled) for j in range(k)]
        spread = mean_interval(per_seed)
        out["mean_at_k"] = {
            "k": k,
            "mean": spread.estimate,
            "per_seed": per_seed,
            "ci95_across_seeds": [spread.low, spread.high],
        }
    budgeted = [r for r in values if "thinking_truncated" in r]
    if budgeted:  # how often the thinking budget cut the reasoning short
        out["thinking_truncated"] = sum(bool(r["thinking_truncated"]) for r in budgeted)
    if values and all("rotations" in r for r in values):
        out["circular"] = True
        out["first_rotation_accuracy"] = sum(
            bool(r["correct_first_rotation"]) for r in values
        ) / len(values)
    return out


def markdown(summaries: list[dict[str, Any]]) -> str:
    """One run: its settings and a row per benchmark. Several: one table, a column per run."""
    if len(summaries) > 1:
        return side_by_side(summaries)
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
        lines.append(provenance_text(s) + "\n")
        norm = s["mode"] == "loglikelihood"
        lines.append(
            "| benchmark | accuracy | 95% CI | n | unparsed |"
            + (" acc_norm |" if norm else "")
            + " tokens | time (s) | baselines | predictions |"
        )
        lines.append("|---|---|---|---|---|" + ("---|" if norm else "") + "---|---|---|---|")
        for name, b in s["benchmarks"].items():
            tokens = b["prompt_tokens"] + b["completion_tokens"]
            wall = b["wall_seconds"] if b["wall_seconds"] is not None else b["item_seconds"]
            lines.append(
                f"| {name} | {b['accuracy']:.3f} | {b['ci95'][0]:.3f}–{b['ci95'][1]:.3f} | {b['n']}"
                f" | {b['unparsed']} |"
                + (f" {b['acc_norm']:.3f} |" if norm else "")
                + f" {tokens} | {wall:.1f} | {baseline_text(b.get('baselines', {}))}"
                + f" | {prediction_text(b.get('baselines', {}))} |"
            )
        for name, b in s["benchmarks"].items():
            if "mean_at_k" in b:
                m = b["mean_at_k"]
                lines.append(
                    f"\n{name}: mean@{m['k']} {m['mean']:.3f} (95 % across seeds"
                    f" {m['ci95_across_seeds'][0]:.3f}–{m['ci95_across_seeds'][1]:.3f});"
                    " accuracy above is the first sample's"
                )
            if "thinking_truncated" in b:
                lines.append(
                    f"\n{name}: the thinking budget closed the reasoning early in"
                    f" {b['thinking_truncated']} of {b['n']} items"
                )
            if b.get("circular"):
                lines.append(
                    f"\n{name}: CircularEval (right under every rotation); options as published:"
                    f" {b['first_rotation_accuracy']:.3f}"
                )
        if s["mean_accuracy"] is not None:
            lines.append(
                f"\nUnweighted mean over {s['benchmarks_in_mean']} benchmarks: **{s['mean_accuracy']:.3f}**\n"
            )
    return "\n".join(lines) + "\n"


def side_by_side(summaries: list[dict[str, Any]]) -> str:
    """A row per setting and per benchmark, a column per run: accuracy (95% CI), n, unparsed."""
    names = list(dict.fromkeys(n for s in summaries for n in s["benchmarks"]))
    header = "| | " + " | ".join(_run_name(s) for s in summaries) + " |"
    lines = [header, "|---|" + "---|" * len(summaries)]

    def row(label: str, cells: list[str]) -> None:
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    row("mode", [s["mode"] for s in summaries])
    row("seed · limit", [f"{s['seed']} · {s['limit']}" for s in summaries])
    row("prompts", [s["prompt_version"] for s in summaries])
    row("engine", [str(s["model"].get("engine", s["model"].get("backend"))) for s in summaries])
    row("quantization", [s["model"].get("quantization") or "n/a" for s in summaries])
    row("parallel", [str(s.get("parallel")) for s in summaries])
    for name in names:
        row(name, [_cell(s["benchmarks"].get(name)) for s in summaries])
    for name in names:
        row(
            f"{name} baselines · predictions",
            [
                baseline_text(b.get("baselines", {}))
                + " · "
                + prediction_text(b.get("baselines", {}))
                if (b := s["benchmarks"].get(name))
                else "-"
                for s in summaries
            ],
        )
    row(
        "**mean**",
        [
            f"**{s['mean_accuracy']:.3f}** ({s['benchmarks_in_mean']} benchmarks)"
            if s["mean_accuracy"] is not None
            else "-"
            for s in summaries
        ],
    )
    return "\n".join(lines) + "\n"


def provenance_text(summary: dict[str, Any]) -> str:
    """Software, parallelism, decoding and data files in one line for the Markdown report."""
    soft = summary.get("software") or {}
    builds = ", ".join(f"{k} {v}" for k, v in (soft.get("engine_builds") or {}).items() if v)
    lineage = summary["model"].get("lineage")
    parts = [
        f"terminus {soft.get('terminus', '?')}" + (f" ({builds})" if builds else ""),
        f"parallel {summary.get('parallel')}",
    ]
    if lineage:
        parts.append("lineage " + ", ".join(f"{k} {v}" for k, v in lineage.items()))
    decoding = summary.get("decoding") or {}
    if decoding:
        parts.append("decoding " + ", ".join(f"{k} {v}" for k, v in decoding.items()))
    files = "; ".join(
        f"{name} ← `{d['source']}` (sha256 `{d['sha256'][:12]}…`)"
        for name, d in summary["data"].items()
    )
    return " · ".join(parts) + f"\n\ndata: {files}"


def _run_name(summary: dict[str, Any]) -> str:
    return str(summary.get("run") or summary["label"]).replace("|", "\\|")


def _cell(b: dict[str, Any] | None) -> str:
    if not b or not b["n"]:
        return "-"
    text = f"{b['accuracy']:.3f} ({b['ci95'][0]:.3f}–{b['ci95'][1]:.3f}), n {b['n']}"
    return text + (f", {b['unparsed']} unparsed" if b["unparsed"] else "")


def chart(summaries: list[dict[str, Any]], path: Path) -> list[str]:
    """Grouped bars (one group per benchmark, one bar per run) with 95 % CI whiskers;
    returns the legend's labels."""
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
        axes.bar(xs, heights, width, yerr=[low, high], capsize=3, label=_run_name(s))
    axes.set_xticks(range(len(names)), names, rotation=20, ha="right")
    axes.set_ylim(0, 1)
    axes.set_ylabel("accuracy (95% CI)")
    legend = axes.legend(fontsize="small")
    figure.tight_layout()
    temporary = path.with_name(path.stem + ".tmp.png")
    figure.savefig(temporary, dpi=110)
    plt.close(figure)
    temporary.replace(path)
    return [text.get_text() for text in legend.get_texts()]


def write_reports(runs: list[Run], out_dir: Path, stem: str = "report") -> dict[str, Path]:
    summaries_ = summaries(runs)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out_dir / f"{stem}.json",
        "markdown": out_dir / f"{stem}.md",
        "png": out_dir / f"{stem}.png",
    }
    write_json(paths["json"], summaries_[0] if len(summaries_) == 1 else summaries_)
    paths["markdown"].write_text(markdown(summaries_), encoding="utf-8")
    try:
        chart(summaries_, paths["png"])
    except ImportError:
        log.warning("no PNG chart: matplotlib is missing (pip install 'terminus-sdk[eval]')")
        del paths["png"]
    return paths


def comparable(a: Run, b: Run) -> None:
    """Refuses two runs whose scores cannot be paired: another mode, prompt, items or file."""
    problems = []
    ca, cb = a.meta["config"], b.meta["config"]
    fields = ("mode", "prompt_version", "fewshot", "circular", "samples", "template")
    for field in (*fields, "thinking_budget"):
        if ca.get(field) != cb.get(field):
            problems.append(f"{field} {ca.get(field)} vs {cb.get(field)}")
    for name in a.meta["data"].keys() & b.meta["data"].keys():
        da, db = a.meta["data"][name], b.meta["data"][name]
        if da["sha256"] != db["sha256"]:
            problems.append(f"{name}: different data files ({da['source']} vs {db['source']})")
        elif da["item_ids"] != db["item_ids"] or da.get("fewshot_ids") != db.get("fewshot_ids"):
            problems.append(
                f"{name}: different items ({len(da['item_ids'])} vs {len(db['item_ids'])})"
            )
    if problems:
        raise IncomparableRunsError(
            f"{a.path} and {b.path} differ: " + "; ".join(problems),
            hint="run both with the same mode, prompts, data files, --limit and --seed",
        )


def compare(a: Run, b: Run) -> dict[str, Any]:
    """Per benchmark, accuracy of B minus A on the items both scored, with an exact 95 %
    interval given the discordant pairs (and the normal one from the paired differences)."""
    comparable(a, b)
    name_a, name_b = run_labels([a, b])
    out: dict[str, Any] = {"a": name_a, "b": name_b, "benchmarks": {}}
    for name in a.rows.keys() & b.rows.keys():
        shared = sorted(a.rows[name].keys() & b.rows[name].keys())
        if not shared:
            continue
        xs = [float(a.rows[name][i]["correct"]) for i in shared]
        ys = [float(b.rows[name][i]["correct"]) for i in shared]
        normal = paired_difference(xs, ys)
        b_only = sum(1 for x, y in zip(xs, ys, strict=True) if y > x)
        a_only = sum(1 for x, y in zip(xs, ys, strict=True) if x > y)
        exact = paired_exact(b_only, a_only, len(shared))
        out["benchmarks"][name] = {
            "n": len(shared),
            "accuracy_a": sum(xs) / len(xs),
            "accuracy_b": sum(ys) / len(ys),
            "difference": exact.difference,
            "ci95": [exact.low, exact.high],
            "ci95_normal": [normal.low, normal.high],
            "p_value": exact.p_value,
            "b_right_a_wrong": b_only,
            "a_right_b_wrong": a_only,
        }
    if not out["benchmarks"]:
        raise IncomparableRunsError(
            f"{a.path} and {b.path} share no scored items",
            hint="run both with the same benchmarks, --limit and --seed",
        )
    return out


def compare_markdown(result: dict[str, Any]) -> str:
    """A row per benchmark; exact intervals, and "no discordant items" where none flipped."""
    comparisons = result["benchmarks"].values()
    lines = []
    if all(c["b_right_a_wrong"] == c["a_right_b_wrong"] == 0 for c in comparisons):
        n = sum(c["n"] for c in comparisons)
        lines.append(
            f"A = {result['a']} and B = {result['b']} are identical on {n} items: every item "
            "right or wrong in both.\n"
        )
    lines += [
        f"B − A, where A = {result['a']} and B = {result['b']} (paired, same items; exact 95 %"
        " interval given the discordant items, exact McNemar p)\n",
        "| benchmark | n | A | B | B − A | 95% CI | p | B right, A wrong | A right, B wrong |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, c in sorted(result["benchmarks"].items()):
        lines.append(
            f"| {name} | {c['n']} | {c['accuracy_a']:.3f} | {c['accuracy_b']:.3f}"
            f" | {c['difference']:+.3f} | {interval_text(c)} | {c['p_value']:.3g}"
            f" | {c['b_right_a_wrong']} | {c['a_right_b_wrong']} |"
        )
    return "\n".join(lines) + "\n"


def interval_text(c: dict[str, Any]) -> str:
    if c["b_right_a_wrong"] == c["a_right_b_wrong"] == 0:
        return f"no discordant items among {c['n']} (B − A within ±{c['ci95'][1]:.3f})"
    return f"{c['ci95'][0]:+.3f} to {c['ci95'][1]:+.3f}"
