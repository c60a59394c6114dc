"""A resumable HealthBench run and its report."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from terminus.errors import JudgeOutputError
from terminus.eval.backends import EvalBackend
from terminus.eval.healthbench import Example, Verdict, aggregate, example_row, judge
from terminus.eval.items import sample
from terminus.eval.provenance import software
from terminus.eval.runner import progress_bar, write_json
from terminus.eval.store import ResultStore, config_key

REPORT_FILE = "healthbench.json"
#: Answers and single grades, stored as each arrives (an interrupted run loses nothing).
PROGRESS_FILE = "progress.jsonl"


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
    report_file: str = REPORT_FILE,
) -> dict[str, Any]:
    """Grade ``limit`` seeded examples (those already stored for this setup are kept)."""
    answers_setup = {"model": model.describe(), "seed": seed, "max_tokens": max_tokens}
    setup = {"benchmark": "healthbench", **answers_setup, "judge": judge_model.describe()}
    store = ResultStore(run_dir, config_key(setup))
    answers = ResultStore(run_dir, config_key(answers_setup), PROGRESS_FILE)
    grades = ResultStore(run_dir, config_key(setup), PROGRESS_FILE)
    stored = store.done()
    chosen = sample(examples, limit, seed)
    bar = progress_bar(len(chosen), progress)
    started = time.perf_counter()
    graded: list[dict[str, Any]] = []
    try:
        for example in chosen:
            row = stored.get(("healthbench", example.id))
            if row is None:
                row = _grade(model, judge_model, example, answers, grades, max_tokens, seed)
                store.append(row)
            graded.append(row)
            bar.update(1)
    finally:
        bar.close()
    unparsed = sum(int(g.get("unparsed_grades", 0)) for g in graded)
    total = sum(len(g["met"]) for g in graded)
    if total and unparsed == total:
        raise JudgeOutputError(
            f"the judge {judge_model.label} gave no readable criteria_met in {total} grades",
            hint=f"every reply is kept in {run_dir / PROGRESS_FILE}",
        )
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
        "grades": total,
        "unparsed_grades": unparsed,
        "grader_template": "simple-evals healthbench GRADER_TEMPLATE (complete, with examples)",
        "data_sha256": _sha256(data_source),
        "software": software(),
        "wall_seconds": round(time.perf_counter() - started, 3),
        **aggregate(graded, seed=seed),
    }
    write_json(run_dir / report_file, report)
    return report


def _grade(
    model: EvalBackend,
    judge_model: EvalBackend,
    example: Example,
    answers: ResultStore,
    grades: ResultStore,
    max_tokens: int,
    seed: int,
) -> dict[str, Any]:
    """Answer (or reuse the stored answer), grade each rubric item not graded yet."""
    answer = answers.done().get(("healthbench-answer", example.id))
    if answer is None:
        out = model.generate(
            list(example.prompt), max_tokens=max_tokens, temperature=0.0, seed=seed
        )
        answer = {
            "benchmark": "healthbench-answer",
            "id": example.id,
            "response": out.text,
            "prompt_tokens": out.prompt_tokens,
            "completion_tokens": out.completion_tokens,
        }
        answers.append(answer)
    conversation = [*example.prompt, {"role": "assistant", "content": answer["response"]}]
    done = grades.done()

    def one(index: int) -> Verdict:
        kept = done.get(("healthbench-grade", f"{example.id}#{index}"))
        if kept is not None:
            return Verdict(kept["met"], kept["reply"], kept["attempts"])
        verdict = judge(judge_model, conversation, example.rubrics[index])
        grades.append(
            {"benchmark": "healthbench-grade", "id": f"{example.id}#{index}",
             "met": verdict.met, "reply": verdict.reply, "attempts": verdict.attempts}
        )  # fmt: skip
        return verdict

    with ThreadPoolExecutor(max_workers=max(1, judge_model.parallel)) as pool:
        verdicts = list(pool.map(one, range(len(example.rubrics))))
    tokens = (int(answer["prompt_tokens"]), int(answer["completion_tokens"]))
    return example_row(example, answer["response"], verdicts, tokens)


def _sha256(path: str) -> str | None:
    from terminus.eval.datasets import file_sha256

    return file_sha256(Path(path)) if path and Path(path).is_file() else None


def healthbench_markdown(report: dict[str, Any]) -> str:
    overall = report["overall"]
    lines = [
        f"### HealthBench: {report['label']}, graded by {report['judge']}\n",
        f"score **{overall['score']:.3f}** ± {overall['bootstrap_std']:.3f} (bootstrap std),"
        f" n = {overall['n']}; {report.get('unparsed_grades', 0)} of {report.get('grades', '?')}"
        " judge replies unreadable (left out)\n"
        if overall
        else "no scorable examples\n",
        "| sub-score | score | std | n |",
        "|---|---|---|---|",
    ]
    for group in ("themes", "axes"):
        for tag, s in report[group].items():
            lines.append(f"| {tag} | {s['score']:.3f} | {s['bootstrap_std']:.3f} | {s['n']} |")
    return "\n".join(lines) + "\n"


def judges_side_by_side(reports: list[dict[str, Any]]) -> str:
    """The same answers graded by several judges: a column per judge."""
    lines = [
        f"### HealthBench: {reports[0]['label']}, the same answers under {len(reports)} judges\n",
        "| | " + " | ".join(r["judge"].replace("|", "\\|") for r in reports) + " |",
        "|---|" + "---|" * len(reports),
    ]

    def cell(s: dict[str, Any] | None) -> str:
        return f"{s['score']:.3f} ± {s['bootstrap_std']:.3f} (n {s['n']})" if s else "-"

    lines.append("| overall | " + " | ".join(cell(r["overall"]) for r in reports) + " |")
    lines.append(
        "| unreadable grades | "
        + " | ".join(f"{r['unparsed_grades']} of {r['grades']}" for r in reports)
        + " |"
    )
    for group in ("themes", "axes"):
        for tag in dict.fromkeys(t for r in reports for t in r[group]):
            lines.append(
                f"| {tag} | " + " | ".join(cell(r[group].get(tag)) for r in reports) + " |"
            )
    return "\n".join(lines) + "\n"
