"""Reading the chosen option out of a free-text answer.

Reasoning in ``<think>…</think>`` is dropped first. Then, in order of how explicit
they are: ``Final Answer: X``, ``Answer: X`` (also bold, or "the answer is X"),
then a lone option in parentheses, then a last or first line that is (or opens
with) the option. The last explicit match
wins (models restate the question's options before answering). ``None`` means
unparsed: counted wrong, and reported separately.
"""

from __future__ import annotations

import re
from collections.abc import Collection

_THINK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL | re.IGNORECASE)
_MARKUP = re.compile(r"[*_`#]+")
_HEDGES = "(?:indeed|likely|probably|clearly|definitely|most\\s+likely)"


def strip_thinking(text: str) -> str:
    return _THINK.sub("", text)


def thinking_of(text: str) -> str:
    """The ``<think>…</think>`` parts of a reply (what :func:`strip_thinking` drops)."""
    return "\n".join(match.group(0) for match in _THINK.finditer(text))


def extract_answer(text: str, options: Collection[str]) -> str | None:
    """The option key the text commits to, or ``None``."""
    body = _MARKUP.sub("", strip_thinking(text)).strip()
    if not body:
        return None
    keys = sorted(options, key=len, reverse=True)
    by_lower = {k.lower(): k for k in keys}
    lettered = all(len(k) == 1 for k in keys)
    alternatives = "|".join(re.escape(k) for k in keys)
    if not lettered:  # yes / no / maybe: any case; letters stay capitals ("a patient")
        alternatives = f"(?i:{alternatives})"
    # The option itself, bare or in brackets, not running into a longer word.
    option = rf"[\(\[]?\s*({alternatives})\s*[\)\]]?(?![A-Za-z0-9])"
    explicit = (
        rf"(?i:final\s+answer\s*(?:is)?\s*[:：]?)\s*{option}",
        rf"(?i:answer\s*(?:is)?\s*[:：]\s*(?:option\s*)?){option}",
        rf"(?i:(?:answer|option|choice)\s+is\s*(?:{_HEDGES}\s+)?(?:option\s*)?){option}",
    )
    for pattern in explicit:
        found = list(re.finditer(pattern, body))
        if found:
            return _key(found[-1].group(1), by_lower, keys)
    if lettered:
        bracketed = re.findall(rf"\(({alternatives})\)", body)
        if len(set(bracketed)) == 1:  # several different ones: the model listed options
            return bracketed[0]
    # A line that is the option, or opens with it ("B. Because…", "Yes, the data…"):
    # the last line first, then the first.
    lines = body.splitlines()
    for line in (lines[-1], lines[0]):
        whole = re.fullmatch(rf"{option}(?:[\.:,;].*)?", line.strip().rstrip("."), re.DOTALL)
        if whole:
            return _key(whole.group(1), by_lower, keys)
    return None


def _key(found: str, by_lower: dict[str, str], keys: list[str]) -> str | None:
    if found in keys:
        return found
    return by_lower.get(found.lower())
