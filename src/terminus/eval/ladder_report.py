"""The ladder's report: one table in the layout of the MedPsy report (a row per model,
benchmarks as columns, average, n, 95 % CI), accuracy against model size, paired
quantization deltas, baselines and provenance; as HTML (self-contained), Markdown, JSON."""

from __future__ import annotations

import base64
import html
import logging
from pathlib import Path
from typing import Any

from terminus.eval.baselines import baseline_text, prediction_text
from terminus.eval.ladder import load_ladder
from terminus.eval.runner import write_json

log = logging.getLogger(__name__)


def _benchmarks(summaries: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(name for s in summaries for name in s["benchmarks"]))


def table_rows(summaries: list[dict[str, Any]]) -> list[list[str]]:
    """Header, then a row per model: params, quantization, each benchmark, average, n."""
    names = _benchmarks(summaries)
    rows = [["model", "parameters", "quantization", *names, "average", "n"]]
    for s in summaries:
        cell = s["cell"]
        params = cell.get("parameters")
        quantization = s["model"].get("quantization") or cell.get("quantization") or "?"
        lineage = s["model"].get("lineage") or {}
        if lineage.get("warning"):  # re-encoded from coarser weights: say so in the table itself
            quantization += f" ⚠ from {lineage['origin_type']}"
        cells = [s["run"], f"{params / 1e6:.0f} M" if params else "?", quantization]
        n = 0
        for name in names:
            b = s["benchmarks"].get(name)
            if not b or not b["n"]:
                cells.append("-")
                continue
            n += b["n"]
            cells.append(
                f"{100 * b['accuracy']:.1f} ({100 * b['ci95'][0]:.1f}–{100 * b['ci95'][1]:.1f})"
            )
        mean = s["mean_accuracy"]
        cells.append("-" if mean is None else f"{100 * mean:.2f}")
        cells.append(str(n))
        rows.append(cells)
    return rows


def delta_rows(deltas: list[dict[str, Any]]) -> list[list[str]]:
    rows = [
        [
            "quantized − base",
            "benchmark",
            "n",
            "base %",
            "quantized %",
            "Δ points",
            "95 % CI (exact)",
            "p",
        ]  # fmt: skip
    ]
    for d in deltas:
        for name, c in sorted(d["benchmarks"].items()):
            rows.append(
                [
                    f"{d['b']} − {d['a']}",
                    name,
                    str(c["n"]),
                    f"{100 * c['accuracy_a']:.1f}",
                    f"{100 * c['accuracy_b']:.1f}",
                    f"{100 * c['difference']:+.1f}",
                    _percent_interval(c),
                    f"{c['p_value']:.3g}",
                ]
            )
    return rows


def _percent_interval(c: dict[str, Any]) -> str:
    """The exact interval in percentage points, like the rest of the table."""
    if c["b_right_a_wrong"] == c["a_right_b_wrong"] == 0:
        return f"no discordant items among {c['n']} (Δ within ±{100 * c['ci95'][1]:.1f})"
    return f"{100 * c['ci95'][0]:+.1f} to {100 * c['ci95'][1]:+.1f}"


def baseline_rows(summaries: list[dict[str, Any]]) -> list[list[str]]:
    rows = [["model", "benchmark", "accuracy", "baselines", "predictions"]]
    for s in summaries:
        for name, b in s["benchmarks"].items():
            base = b.get("baselines", {})
            rows.append(
                [s["run"], name, f"{b['accuracy']:.3f}", baseline_text(base), prediction_text(base)]
            )
    return rows


def provenance_rows(summaries: list[dict[str, Any]]) -> list[list[str]]:
    rows = [["model", "file · sha256", "lineage", "software", "decoding · parallel", "data"]]
    for s in summaries:
        model = s["model"]
        soft = s.get("software") or {}
        lineage = model.get("lineage") or {}
        builds = ", ".join(f"{k} {v}" for k, v in (soft.get("engine_builds") or {}).items() if v)
        decoding = ", ".join(f"{k} {v}" for k, v in (s.get("decoding") or {}).items())
        rows.append(
            [
                s["run"],
                f"{model.get('file', '?')} · {str(model.get('sha256'))[:16]}…",
                "; ".join(f"{k}: {v}" for k, v in lineage.items()) or "as shipped",
                f"terminus {soft.get('terminus', '?')} ({builds})",
                f"{decoding} · parallel {s.get('parallel')}",
                "; ".join(
                    f"{k}: {Path(v['source']).name} {v['sha256'][:12]}…"
                    for k, v in s["data"].items()
                ),
            ]
        )
    return rows


def size_plot(summaries: list[dict[str, Any]], path: Path) -> bool:
    """Average accuracy against parameters (log x), one point per rung; False without
    matplotlib or sizes."""
    points = [
        (s["cell"]["parameters"], s["mean_accuracy"], s["run"])
        for s in summaries
        if s["cell"].get("parameters") and s["mean_accuracy"] is not None
    ]
    if not points:
        return False
    try:
        import matplotlib
    except ImportError:
        log.warning("no size plot: matplotlib is missing (pip install 'terminus-sdk[eval]')")
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.5, 4.2))
    seen: dict[tuple[int, float], int] = {}
    for params, accuracy, label in points:
        axes.scatter(params / 1e6, 100 * accuracy)
        stacked = seen.get((params, accuracy), 0)  # same point (e.g. a re-encoding): labels stack
        seen[(params, accuracy)] = stacked + 1
        axes.annotate(label, (params / 1e6, 100 * accuracy), fontsize="small",
                      xytext=(4, 4 + 11 * stacked), textcoords="offset points")  # fmt: skip
    chance = [
        b["baselines"]["chance"]
        for s in summaries
        for b in s["benchmarks"].values()
        if b.get("baselines", {}).get("chance") is not None
    ]
    if chance:
        axes.axhline(100 * sum(chance) / len(chance), linestyle="--", color="grey",
                     label="chance (mean)")  # fmt: skip
        axes.legend(fontsize="small")
    axes.set_ylim(0, 100)
    axes.set_xscale("log")
    axes.set_xlabel("parameters (millions, log scale)")
    axes.set_ylabel("average accuracy %")
    figure.tight_layout()
    temporary = path.with_name(path.stem + ".tmp.png")
    figure.savefig(temporary, dpi=110)
    plt.close(figure)
    temporary.replace(path)
    return True


def _md_table(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(c.replace("|", "\\|") for c in rows[0]) + " |"]
    lines.append("|" + "---|" * len(rows[0]))
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows[1:]]
    return "\n".join(lines)


def _html_table(rows: list[list[str]], table_id: str) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows[1:]
    )
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _settings(ladder: dict[str, Any]) -> str:
    c = ladder["config"]
    return (
        f"mode {c['mode']} · {c['limit'] or 'all'} items per benchmark · seed {c['seed']}"
        f" · prompts {c['prompt_version']} · parallel {ladder['parallel']}"
        f" · threads {ladder.get('threads') or 'default'}"
    )


_STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:80em}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;
text-align:left;font-size:.9em}th{background:#f3f3f3}.muted{color:#666}img{max-width:100%}"""


def sections(
    summaries: list[dict[str, Any]], deltas: list[dict[str, Any]]
) -> list[tuple[str, list[list[str]], str]]:
    """(title, rows with a header first, id) of each table the report shows."""
    return [
        ("Accuracy % (95 % CI)", table_rows(summaries), "ladder-table"),
        ("Quantization deltas (paired, same items)", delta_rows(deltas), "ladder-deltas"),
        ("Baselines and prediction distribution", baseline_rows(summaries), "ladder-baselines"),
        ("Provenance", provenance_rows(summaries), "ladder-provenance"),
    ]


def ladder_view(out_dir: Path) -> dict[str, Any]:
    """The report's tables as data (what the web app shows)."""
    ladder, summaries, deltas = load_ladder(out_dir)
    return {
        "settings": _settings(ladder),
        "sections": [
            {"title": title, "id": table_id, "rows": rows}
            for title, rows, table_id in sections(summaries, deltas)
        ],
        "has_size_plot": (out_dir / "ladder_size.png").is_file(),
    }


def write_ladder_report(out_dir: Path) -> dict[str, Path]:
    """ladder_report.{json,md,html} and ladder_size.png in ``out_dir``."""
    ladder, summaries, deltas = load_ladder(out_dir)
    plot = out_dir / "ladder_size.png"
    has_plot = size_plot(summaries, plot)
    markdown = [f"# Evaluation ladder\n\n{_settings(ladder)}\n"]
    page = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Evaluation ladder</title>",
        f"<style>{_STYLE}</style></head><body><h1>Evaluation ladder</h1>",
        f"<p class='muted'>{html.escape(_settings(ladder))}</p>",
    ]
    for title, rows, table_id in sections(summaries, deltas):
        if len(rows) == 1:
            continue
        markdown.append(f"## {title}\n\n{_md_table(rows)}\n")
        page.append(f"<h2>{html.escape(title)}</h2>{_html_table(rows, table_id)}")
        if table_id == "ladder-table" and has_plot:
            encoded = base64.b64encode(plot.read_bytes()).decode()
            page.append(
                "<h2>Average accuracy against model size</h2>"
                f"<img id='ladder-size' alt='average accuracy against parameters' "
                f"src='data:image/png;base64,{encoded}'>"
            )
            markdown.append("![average accuracy against parameters](ladder_size.png)\n")
    page.append("</body></html>")
    paths = {
        "json": out_dir / "ladder_report.json",
        "markdown": out_dir / "ladder_report.md",
        "html": out_dir / "ladder_report.html",
    }
    write_json(paths["json"], {"ladder": ladder, "summaries": summaries, "deltas": deltas})
    for key, text in (("markdown", "\n".join(markdown)), ("html", "".join(page))):
        temporary = paths[key].with_name(paths[key].name + ".tmp")
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(paths[key])
    if has_plot:
        paths["png"] = plot
    return paths
