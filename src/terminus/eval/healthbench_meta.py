"""How far to trust a HealthBench judge: its agreement with physicians.

HealthBench's meta-evaluation file holds model answers already graded by several
physicians: each row is a conversation, a ``completion``, one ``rubric`` criterion, and
``binary_labels`` (one per physician, with ``anonymized_physician_ids``). The judge grades
every row with the same grader prompt as a HealthBench run; its labels are compared with
each physician's, pair by pair, as simple-evals does: precision and recall of "met" and of
"not met", their F1s, and the balanced F1 (the mean of the two). Each physician is scored
the same way against the other physicians, so the judge's figure sits next to the level
of agreement among physicians themselves. Grades are stored as they arrive (a rerun
resumes); unreadable replies are counted, not fatal.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from terminus.errors import BenchmarkDataError, JudgeOutputError
from terminus.eval.backends import EvalBackend
from terminus.eval.datasets import Published
from terminus.eval.healthbench import judge
from terminus.eval.items import sample
from terminus.eval.loaders import read_records
from terminus.eval.provenance import software
from terminus.eval.runner import progress_bar, write_json
from terminus.eval.store import ResultStore, config_key

META = Published(
    "https://openaipublic.blob.core.windows.net/simple-evals/healthbench/"
    "2025-05-07-06-14-12_oss_meta_eval.jsonl"
)
REPORT_FILE = "calibration.json"


@dataclass(frozen=True)
class MetaRow:
    id: str
    prompt: tuple[dict[str, str], ...]
    completion: str
    rubric: str
    labels: tuple[bool, ...]
    physicians: tuple[str, ...]
    category: str


def load_meta(path: Path) -> list[MetaRow]:
    rows = []
    for index, record in enumerate(read_records(path)):
        try:
            labels = tuple(record["binary_labels"])
            physicians = tuple(str(p) for p in record.get("anonymized_physician_ids") or ())
            prompt = tuple(
                {"role": str(m["role"]), "content": str(m["content"])} for m in record["prompt"]
            )
            row = MetaRow(
                id=str(record.get("completion_id") or f"{record.get('prompt_id', '')}#{index}"),
                prompt=prompt,
                completion=str(record["completion"]),
                rubric=str(record["rubric"]),
                labels=labels,
                physicians=physicians or tuple(f"physician-{i}" for i in range(len(labels))),
                category=str(record.get("category") or "all"),
            )
        except (KeyError, TypeError) as exc:
            raise BenchmarkDataError(
                f"{path}: row {index + 1} is not a HealthBench meta-evaluation row "
                f"(needs prompt, completion, rubric, binary_labels): {exc}"
            ) from exc
        if not labels or not all(isinstance(x, bool) for x in labels):
            raise BenchmarkDataError(f"{path}: row {index + 1} has no true/false binary_labels")
        if len(row.physicians) != len(labels):
            raise BenchmarkDataError(
                f"{path}: row {index + 1} has {len(labels)} labels "
                f"but {len(row.physicians)} physician ids"
            )
        rows.append(row)
    if not rows:
        raise BenchmarkDataError(f"{path} holds no meta-evaluation rows")
    return rows


def agreement(pairs: Sequence[tuple[bool, bool]]) -> dict[str, Any]:
    """Pairwise agreement of a rater with others: ``pairs`` of (rater, other) labels.

    Precision of "met" counts pairs where the rater said met; recall of "met" pairs where
    the other did; likewise for "not met". Balanced F1 = mean of the two F1s (simple-evals'
    headline figure); ``None`` where a class never occurs.
    """
    out: dict[str, Any] = {"pairs": len(pairs)}
    f1s = []
    for name, cls in (("met", True), ("not_met", False)):
        said = [other == rater for rater, other in pairs if rater is cls]
        truth = [other == rater for rater, other in pairs if other is cls]
        precision = sum(said) / len(said) if said else None
        recall = sum(truth) / len(truth) if truth else None
        f1 = None
        if precision is not None and recall is not None:
            f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
        out[name] = {"precision": precision, "recall": recall, "f1": f1}
        f1s.append(f1)
    out["balanced_f1"] = None if None in f1s else (f1s[0] + f1s[1]) / 2  # type: ignore[operator]
    out["agreement"] = sum(r == o for r, o in pairs) / len(pairs) if pairs else None
    return out


def physicians_agreement(rows: Sequence[MetaRow]) -> dict[str, Any]:
    """Each physician against the others on the rows they graded; the mean over physicians."""
    pairs: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    for row in rows:
        for i, (who, label) in enumerate(zip(row.physicians, row.labels, strict=True)):
            pairs[who].extend((label, other) for j, other in enumerate(row.labels) if j != i)
    scores = [agreement(p)["balanced_f1"] for p in pairs.values() if p]
    kept = [s for s in scores if s is not None]
    return {
        "physicians": len(pairs),
        "scored": len(kept),
        "mean_balanced_f1": sum(kept) / len(kept) if kept else None,
    }


def run_calibration(
    judge_model: EvalBackend,
    rows: list[MetaRow],
    run_dir: Path,
    *,
    limit: int | None = None,
    seed: int = 0,
    data_source: str = "",
    progress: bool = False,
) -> dict[str, Any]:
    """Grade ``limit`` seeded rows with ``judge_model`` and report its agreement."""
    store = ResultStore(
        run_dir, config_key({"meta": "healthbench", "judge": judge_model.describe()})
    )
    done = store.done()
    chosen = sample(rows, limit, seed)
    bar = progress_bar(len(chosen), progress)
    started = time.perf_counter()

    def grade(row: MetaRow) -> bool | None:
        kept = done.get(("healthbench-meta", row.id))
        if kept is not None:
            bar.update(1)
            return kept["met"]
        conversation = [*row.prompt, {"role": "assistant", "content": row.completion}]
        verdict = judge(judge_model, conversation, row.rubric)
        store.append(
            {"benchmark": "healthbench-meta", "id": row.id, "met": verdict.met,
             "reply": verdict.reply, "attempts": verdict.attempts}
        )  # fmt: skip
        bar.update(1)
        return verdict.met

    try:
        with ThreadPoolExecutor(max_workers=max(1, judge_model.parallel)) as pool:
            grades = list(pool.map(grade, chosen))
    finally:
        bar.close()
    readable = [(row, met) for row, met in zip(chosen, grades, strict=True) if met is not None]
    if chosen and not readable:
        raise JudgeOutputError(
            f"the judge {judge_model.label} gave no readable criteria_met in {len(chosen)} rows",
            hint=f"every reply is kept in {run_dir}",
        )
    by_category: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    pairs: list[tuple[bool, bool]] = []
    for row, met in readable:
        assert met is not None
        row_pairs = [(met, label) for label in row.labels]
        pairs.extend(row_pairs)
        by_category[row.category].extend(row_pairs)
    report = {
        "benchmark": "healthbench-meta",
        "judge": judge_model.label,
        "judge_model": judge_model.describe(),
        "data": data_source,
        "seed": seed,
        "n": len(chosen),
        "unparsed_grades": len(chosen) - len(readable),
        "judge_said_met": sum(1 for _, met in readable if met),
        "physician_labels_met": sum(sum(row.labels) for row, _ in readable),
        "physician_labels": sum(len(row.labels) for row, _ in readable),
        "judge_agreement": agreement(pairs),
        "by_category": {c: agreement(p) for c, p in sorted(by_category.items())},
        "physicians": physicians_agreement([row for row, _ in readable]),
        "grader_template": "simple-evals healthbench GRADER_TEMPLATE (complete, with examples)",
        "software": software(),
        "wall_seconds": round(time.perf_counter() - started, 3),
    }
    write_json(run_dir / REPORT_FILE, report)
    return report


def calibration_markdown(report: dict[str, Any]) -> str:
    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.1f}"

    judge_f1 = report["judge_agreement"]["balanced_f1"]
    doctors = report["physicians"]["mean_balanced_f1"]
    lines = [
        f"### HealthBench judge calibration: {report['judge']}",
        "",
        f"{report['n']} graded rubric items ({report['unparsed_grades']} unreadable replies), "
        f"{report['physician_labels']} physician labels.",
        "",
        "| rater | balanced F1 vs physicians | agreement | F1 met | F1 not met |",
        "|---|---|---|---|---|",
        "| judge | {} | {} | {} | {} |".format(
            pct(judge_f1),
            pct(report["judge_agreement"]["agreement"]),
            pct(report["judge_agreement"]["met"]["f1"]),
            pct(report["judge_agreement"]["not_met"]["f1"]),
        ),
        f"| physicians (mean over {report['physicians']['scored']}) | {pct(doctors)} | | | |",
        "",
        f'The judge said "met" on {report["judge_said_met"]} of '
        f"{report['n'] - report['unparsed_grades']} items; physicians on "
        f"{report['physician_labels_met']} of {report['physician_labels']} labels.",
    ]
    if judge_f1 is not None and doctors is not None and judge_f1 < doctors:
        lines.append(
            f"⚠ This judge agrees with physicians less than they agree with each other "
            f"({pct(judge_f1)} vs {pct(doctors)}): read its HealthBench scores with that in mind."
        )
    if report["by_category"]:
        lines += ["", "| category | balanced F1 | pairs |", "|---|---|---|"]
        lines += [
            f"| {name} | {pct(a['balanced_f1'])} | {a['pairs']} |"
            for name, a in report["by_category"].items()
        ]
    return "\n".join(lines) + "\n"
