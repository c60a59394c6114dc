"""One benchmark question, and the deterministic subset a run scores."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class McqItem:
    """A closed-ended question: options keyed by letter (PubMedQA's are yes / no / maybe).

    ``context`` holds a passage the question is about (PubMedQA abstracts); ``answer``
    is the key of the right option.
    """

    id: str
    question: str
    options: dict[str, str]
    answer: str
    context: str = ""
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def lettered(self) -> bool:
        return all(len(key) == 1 and key in LETTERS for key in self.options)


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


T = TypeVar("T", bound=_HasId)


def sample(items: Sequence[T], limit: int | None, seed: int) -> list[T]:
    """``limit`` items chosen by ``seed``, independent of the file's order, in id order.

    Each item is ranked by a hash of (seed, id), so the same seed picks the same
    items from a file that was reordered or grew, and a larger limit extends a
    smaller one.
    """
    if limit is None or limit >= len(items):
        chosen = list(items)
    else:
        chosen = sorted(items, key=lambda item: _rank(seed, item.id))[:limit]
    return sorted(chosen, key=lambda item: item.id)


def _rank(seed: int, item_id: str) -> bytes:
    return hashlib.sha256(f"{seed}\x00{item_id}".encode()).digest()
