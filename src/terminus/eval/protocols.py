"""Scoring protocols beyond zero-shot: few-shot examples, custom prompt templates,
CircularEval rotations, and several sampled answers per item.

- Few-shot: the local files have no dev split, so ``k`` examples are held out of the
  file itself (ranked by a hash of the seed and the item id, like the subset) and never
  scored; every item gets the same examples, so the prompts share a prefix.
- A template is text with ``{context}``, ``{question}``, ``{options}`` (``A. …`` lines)
  and ``{keys}`` (``A, B, C, D``); its sha256 names the prompt version.
- CircularEval (OpenCompass): a lettered item is asked once per rotation of its
  options; it counts as right only if every rotation is answered right.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace

from terminus.errors import InvalidParameterError
from terminus.eval.items import McqItem, sample

_FIELDS = ("context", "question", "options", "keys")


def template_version(template: str) -> str:
    return "custom-" + hashlib.sha256(template.encode()).hexdigest()[:12]


def check_template(template: str) -> None:
    if "{question}" not in template or "{options}" not in template:
        raise InvalidParameterError(
            "a prompt template needs {question} and {options}",
            hint="placeholders: " + ", ".join("{" + f + "}" for f in _FIELDS),
        )
    try:
        template.format(context="", question="", options="", keys="")
    except (KeyError, IndexError, ValueError) as exc:
        raise InvalidParameterError(
            f"bad prompt template: {exc}",
            hint="placeholders: " + ", ".join("{" + f + "}" for f in _FIELDS) + "; write {{ for {",
        ) from exc


def render_template(template: str, item: McqItem) -> str:
    options = "\n".join(f"{key}. {text}" for key, text in item.options.items())
    return template.format(
        context=item.context,
        question=item.question.strip(),
        options=options,
        keys=", ".join(item.options),
    )


def split_fewshot(
    items: Sequence[McqItem], k: int, seed: int
) -> tuple[list[McqItem], list[McqItem]]:
    """(``k`` held-out examples, the items left to score), both independent of file order."""
    if k <= 0:
        return [], list(items)
    if k >= len(items):
        raise InvalidParameterError(
            f"{k} few-shot examples leave nothing to score ({len(items)} items)"
        )
    shots = sample(items, k, seed + 0x5F5F)  # another ranking than the scored subset's
    held = {item.id for item in shots}
    return shots, [item for item in items if item.id not in held]


def rotations(item: McqItem) -> list[tuple[McqItem, dict[str, str]]]:
    """Each rotation of a lettered item's options, with rotated key → original key.

    Rotation ``r`` puts the original option ``(i + r) mod n`` under letter ``i``, so the
    right answer visits every letter once. Items keyed by words (yes / no / maybe) are
    asked once.
    """
    keys = list(item.options)
    if not item.lettered or len(keys) < 2:
        return [(item, {key: key for key in keys})]
    texts = list(item.options.values())
    n = len(keys)
    right = keys.index(item.answer)
    out = []
    for r in range(n):
        options = {keys[i]: texts[(i + r) % n] for i in range(n)}
        back = {keys[i]: keys[(i + r) % n] for i in range(n)}
        out.append((replace(item, options=options, answer=keys[(right - r) % n]), back))
    return out
