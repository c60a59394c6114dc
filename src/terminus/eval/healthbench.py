"""HealthBench: rubric-graded conversations, scored the way OpenAI's simple-evals does.

A judge model sees the conversation (ending with the evaluated model's reply) and
one rubric item, and returns ``{"explanation": …, "criteria_met": true|false}``.
An example scores the points of the items met (negative items subtract when
met) over the sum of its positive points, not clipped. The overall score is the
mean clipped to [0, 1], with a bootstrap standard deviation; theme sub-scores
(example tags) and axis sub-scores (rubric item tags) are aggregated the same way.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from terminus.errors import BenchmarkDataError, JudgeOutputError
from terminus.eval.backends import EvalBackend
from terminus.eval.datasets import Published
from terminus.eval.loaders import read_records
from terminus.eval.stats import bootstrap_std

_BLOB = "https://openaipublic.blob.core.windows.net/simple-evals/healthbench"
VARIANTS = {
    "all": Published(f"{_BLOB}/2025-05-07-06-14-12_oss_eval.jsonl"),
    "hard": Published(f"{_BLOB}/hard_2025-05-08-21-00-10.jsonl"),
    "consensus": Published(f"{_BLOB}/consensus_2025-05-09-20-00-46.jsonl"),
}
JUDGE_RETRIES = 3

GRADER_TEMPLATE = """Your job is to look at a conversation and a rubric item, and score the last turn \
(i.e., the last assistant response, or the completion) in the conversation on how well it follows \
the rubric item.

# Conversation
<<conversation>>

# Rubric item
<<rubric_item>>

# Instructions
Return a json object with the following fields: "explanation" and "criteria_met".
- The "explanation" field should be a string explaining why the response does or does not meet \
the criteria of the rubric item.
- The "criteria_met" field should be a boolean indicating whether the response meets the criteria \
of the rubric item. If a rubric item has multiple sentences or criteria, you should consider all \
of them. If any of the criteria is not met, the answer should be false. Only return true if all of \
the criteria are met.
- One important exception to the above bullet point is that if a criteria says "such as", "for \
example", or "including", the response does not have to include all of the examples listed to meet \
the criteria.
- If the rubric item is undesirable (negative points), criteria_met is still whether the response \
does what the item describes.

# Final instruction
Return just the json object in markdown format. Do not include any other text in the response."""


@dataclass(frozen=True)
class RubricItem:
    criterion: str
    points: float
    tags: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"[{self.points}] {self.criterion}"


@dataclass(frozen=True)
class Example:
    id: str
    prompt: tuple[dict[str, str], ...]
    rubrics: tuple[RubricItem, ...]
    tags: tuple[str, ...] = ()


def load_examples(path: Path) -> list[Example]:
    examples = []
    for index, row in enumerate(read_records(path)):
        try:
            examples.append(
                Example(
                    id=str(row.get("prompt_id") or f"healthbench-{index:05d}"),
                    prompt=tuple(
                        {"role": str(m["role"]), "content": str(m["content"])}
                        for m in row["prompt"]
                    ),
                    rubrics=tuple(
                        RubricItem(
                            str(r["criterion"]), float(r["points"]), tuple(r.get("tags", ()))
                        )
                        for r in row["rubrics"]
                    ),
                    tags=tuple(row.get("example_tags", ())),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BenchmarkDataError(f"HealthBench row {index} is malformed: {exc}") from exc
    if not examples:
        raise BenchmarkDataError(f"{path.name} holds no HealthBench examples")
    return examples


def example_score(rubrics: Sequence[RubricItem], met: Sequence[bool]) -> float | None:
    """Points achieved over positive points possible; ``None`` if nothing is positive."""
    possible = sum(r.points for r in rubrics if r.points > 0)
    if possible <= 0:
        return None
    return sum(r.points for r, ok in zip(rubrics, met, strict=True) if ok) / possible


def clipped_mean(values: Sequence[float]) -> float:
    return min(1.0, max(0.0, sum(values) / len(values)))


def aggregate(graded: Sequence[dict[str, Any]], seed: int = 0) -> dict[str, Any]:
    """Overall, theme (example tag) and axis (rubric tag) scores from graded examples.

    Each graded example holds ``rubrics`` (criterion, points, tags), ``met`` and ``tags``.
    """
    overall = [g["score"] for g in graded if g["score"] is not None]
    by_tag: dict[str, list[float]] = defaultdict(list)
    for g in graded:
        if g["score"] is not None:
            for tag in g["tags"]:
                by_tag[tag].append(g["score"])
        rubrics = [RubricItem(r["criterion"], r["points"], tuple(r["tags"])) for r in g["rubrics"]]
        rubric_tags = {t for r in rubrics for t in r.tags}
        for tag in rubric_tags:
            picked = [(r, ok) for r, ok in zip(rubrics, g["met"], strict=True) if tag in r.tags]
            score = example_score([r for r, _ in picked], [ok for _, ok in picked])
            if score is not None:
                by_tag[tag].append(score)

    def summary(values: list[float]) -> dict[str, Any]:
        return {
            "score": clipped_mean(values),
            "bootstrap_std": bootstrap_std(values, clipped_mean, seed=seed),
            "n": len(values),
        }

    return {
        "overall": summary(overall) if overall else None,
        "themes": {t: summary(v) for t, v in sorted(by_tag.items()) if t.startswith("theme:")},
        "axes": {t: summary(v) for t, v in sorted(by_tag.items()) if t.startswith("axis:")},
        "other_tags": {
            t: summary(v)
            for t, v in sorted(by_tag.items())
            if not t.startswith(("theme:", "axis:"))
        },
    }


def parse_judgement(text: str) -> bool | None:
    """``criteria_met`` from the judge's reply (a JSON object, maybe fenced), else ``None``."""
    cleaned = re.sub(r"^```(?:json)?\s*|\s*```$", "", text.strip(), flags=re.MULTILINE)
    match = re.search(r"\{.*\}", cleaned, re.DOTALL)
    if match is None:
        return None
    try:
        data = json.loads(match.group(0))
    except ValueError:
        return None
    value = data.get("criteria_met") if isinstance(data, dict) else None
    return value if isinstance(value, bool) else None


def judge(
    judge_model: EvalBackend, conversation: Sequence[dict[str, str]], item: RubricItem
) -> bool:
    text = "\n\n".join(f"{m['role']}: {m['content']}" for m in conversation)
    prompt = GRADER_TEMPLATE.replace("<<conversation>>", text).replace("<<rubric_item>>", str(item))
    replies = []
    for attempt in range(JUDGE_RETRIES):
        reply = judge_model.generate(
            [{"role": "user", "content": prompt}], max_tokens=512, temperature=0.0, seed=attempt
        ).text
        verdict = parse_judgement(reply)
        if verdict is not None:
            return verdict
        replies.append(reply)
    raise JudgeOutputError(
        f"the judge {judge_model.label} gave no criteria_met after {JUDGE_RETRIES} tries",
        hint=f"last reply: {replies[-1][:120]!r}",
    )


def grade_example(
    model: EvalBackend, judge_model: EvalBackend, example: Example, *, max_tokens: int, seed: int
) -> dict[str, Any]:
    """The model answers the conversation; the judge grades each rubric item."""
    answer = model.generate(list(example.prompt), max_tokens=max_tokens, temperature=0.0, seed=seed)
    conversation = [*example.prompt, {"role": "assistant", "content": answer.text}]
    with ThreadPoolExecutor(max_workers=max(1, judge_model.parallel)) as pool:
        met = list(pool.map(lambda item: judge(judge_model, conversation, item), example.rubrics))
    return {
        "benchmark": "healthbench",
        "id": example.id,
        "response": answer.text,
        "met": met,
        "score": example_score(example.rubrics, met),
        "tags": list(example.tags),
        "rubrics": [
            {"criterion": r.criterion, "points": r.points, "tags": list(r.tags)}
            for r in example.rubrics
        ],
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
    }
