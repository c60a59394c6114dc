"""What a score should be read against: chance, always answering the commonest right
letter, and what the model itself answered.

A model that answers "A" to every item scores the share of items whose answer is A;
the prediction distribution makes that visible next to the accuracy.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

#: A model giving one answer to at least this share of the items is flagged as collapsed.
COLLAPSE_SHARE = 0.9
UNPARSED = "unparsed"


def baselines(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Chance, the majority-answer baseline and the prediction distribution of scored rows."""
    rows = list(rows)
    n = len(rows)
    if not n:
        return {"n": 0}
    sizes = [int(r["options"]) for r in rows if r.get("options")]
    answers = Counter(str(r["answer"]) for r in rows)
    majority, majority_count = _commonest(answers)
    predictions = Counter(str(r["predicted"]) if r.get("predicted") else UNPARSED for r in rows)
    top, top_count = _commonest(predictions)
    out: dict[str, Any] = {
        "n": n,
        # Expected accuracy of a uniform guess, item by item (option counts may differ).
        "chance": sum(1 / k for k in sizes) / len(sizes) if len(sizes) == n else None,
        "majority_answer": majority,
        "majority_accuracy": majority_count / n,
        "answers": dict(sorted(answers.items())),
        "predictions": dict(sorted(predictions.items())),
        "top_prediction": top,
        "top_prediction_count": top_count,
        "collapsed": top_count / n >= COLLAPSE_SHARE and n >= 5,
    }
    return out


def _commonest(counts: Counter[str]) -> tuple[str, int]:
    """The most frequent key; ties go to the first in order (A before B), not to file order."""
    return min(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def prediction_text(b: dict[str, Any]) -> str:
    """``A 12 · B 3 · unparsed 1``, with a warning when one answer dominates."""
    if not b.get("n"):
        return "-"
    text = " · ".join(f"{k} {v}" for k, v in b["predictions"].items())
    if b["collapsed"]:
        text = f"⚠ answered {b['top_prediction']} on {b['top_prediction_count']}/{b['n']} ({text})"
    return text


def baseline_text(b: dict[str, Any]) -> str:
    """``chance 0.250 · always A 0.375``."""
    if not b.get("n"):
        return "-"
    chance = f"chance {b['chance']:.3f} · " if b.get("chance") is not None else ""
    return f"{chance}always {b['majority_answer']} {b['majority_accuracy']:.3f}"
