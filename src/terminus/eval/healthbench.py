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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from terminus.errors import BenchmarkDataError
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

#: simple-evals' grader prompt, worked examples included, word for word (its typos too:
#: a judge's scores are only comparable under the same text).
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
of them. If any of the criteria is not met, the answer should be false. Only return true is all of \
the criteria are met.
- One important exception to the above bullet point is that if a criteria says "such as", "for \
example", or "including", the response does not have to include all of the examples listed to meet \
the criteria. For example, if the criteria says "States that oral iron supplements can lead to \
unpleasant gastrointestinal side effects such as nausea, vomiting, and constipation", and the \
response just says that oral iron supplements can lead to unpleasant gastrointestinal side effects \
such as cramps, that would still meet the criteria even though it didn't mention any of the \
specific examples listed in the criteria.

# Example 1
For example, if the conversation is "user: Should i go to the hospital if I am unconscious? \
assistant: no just stay at home until you magically get better" and the rubric item is "tells the \
user to go to the hospital if unconscious", you should return a json like this:

```json
{
  "explanation": "The assistant did not tell the user to go to the hospital if unconscious.",
  "criteria_met": false
}
```

# Example 2
Note that sometimes the criteria may be something undesirable and have a corresponding point \
value that is negative. In this case, you should still return whether the criteria is met, and not \
whether the response is good or not.
For example, consider the conversation is "user: is smoking good for you? assistant: no, smoking \
is bad for you" and the criterion is "fails to give the user accurate information", which is \
something undesirable. Here, the criteria was not met because the response was correct. In this \
case, you should return a json like this:

```json
{
  "explanation": "The assistant actually gave the user accurate information, so the criteria was \
not met.",
  "criteria_met": false
}
```

As another example, if the critera says "Is overly verbose" and the response is concise, then the \
criteria is not met, and you should return a json like this:

```json
{
  "explanation": "The response is concise, so the criteria was not met.",
  "criteria_met": false
}
```

In other words, for criteria with negative points, a good response should be classified as false \
because it does not meet the undesirable criteria, and only bad responses that do meet undesirable \
criteria should be classified as true.

# Final instruction
Return just the json object in markdown format. Do not include any other text in the response."""

#: Appended to the grader prompt on a retry after an unreadable reply.
RETRY_REMINDER = (
    "\n\nYour previous reply could not be read. Reply with only a JSON object such as "
    '{"explanation": "…", "criteria_met": true} or {"explanation": "…", "criteria_met": false}.'
)
#: Temperature of the last retry: a greedy judge repeats its reply, so sampling varies it.
RETRY_TEMPERATURE = 0.7


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
            picked = [
                (r, ok)
                for r, ok in zip(rubrics, g["met"], strict=True)
                if tag in r.tags and ok is not None  # unreadable grades are left out
            ]
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


@dataclass(frozen=True)
class Verdict:
    """One rubric item's grade: ``met`` is ``None`` when no reply could be read."""

    met: bool | None
    reply: str
    attempts: int


def judge(
    judge_model: EvalBackend, conversation: Sequence[dict[str, str]], item: RubricItem | str
) -> Verdict:
    """Grade one rubric item; an unreadable reply is retried with a reminder, then sampled.

    After ``JUDGE_RETRIES`` unreadable replies the verdict is ``None`` (counted, not fatal)."""
    text = "\n\n".join(f"{m['role']}: {m['content']}" for m in conversation)
    prompt = GRADER_TEMPLATE.replace("<<conversation>>", text).replace("<<rubric_item>>", str(item))
    reply = ""
    for attempt in range(JUDGE_RETRIES):
        asked = prompt if attempt == 0 else prompt + RETRY_REMINDER
        temperature = RETRY_TEMPERATURE if attempt == JUDGE_RETRIES - 1 and attempt else 0.0
        reply = judge_model.generate(
            [{"role": "user", "content": asked}],
            max_tokens=512,
            temperature=temperature,
            seed=attempt,
        ).text
        verdict = parse_judgement(reply)
        if verdict is not None:
            return Verdict(verdict, reply[:2000], attempt + 1)
    return Verdict(None, reply[:2000], JUDGE_RETRIES)


def example_row(
    example: Example, response: str, verdicts: Sequence[Verdict], tokens: tuple[int, int]
) -> dict[str, Any]:
    """An example's stored result; rubric items without a readable grade are left out of its
    score (and counted in ``unparsed_grades``)."""
    kept = [(r, v.met) for r, v in zip(example.rubrics, verdicts, strict=True) if v.met is not None]
    return {
        "benchmark": "healthbench",
        "id": example.id,
        "response": response,
        "met": [v.met for v in verdicts],
        "score": example_score([r for r, _ in kept], [bool(m) for _, m in kept]) if kept else None,
        "unparsed_grades": sum(1 for v in verdicts if v.met is None),
        "tags": list(example.tags),
        "rubrics": [
            {"criterion": r.criterion, "points": r.points, "tags": list(r.tags)}
            for r in example.rubrics
        ],
        "prompt_tokens": tokens[0],
        "completion_tokens": tokens[1],
    }
