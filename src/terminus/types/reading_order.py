"""Reading order for OCR blocks: group boxes into visual lines, lines top to bottom.

Engines return boxes in detection order, which is not reading order for multi-column
rows or slightly skewed lines. Two boxes share a line when their vertical spans
overlap by more than half of the shorter one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar


class _Boxed(Protocol):
    @property
    def text(self) -> str: ...

    @property
    def box(self) -> tuple[tuple[float, float], ...]: ...


B = TypeVar("B", bound=_Boxed)


def _span(block: _Boxed) -> tuple[float, float]:
    ys = [p[1] for p in block.box]
    return min(ys), max(ys)


def _left(block: _Boxed) -> float:
    return min(p[0] for p in block.box)


def group_lines(blocks: Sequence[B]) -> list[list[B]]:
    lines: list[tuple[float, float, list[B]]] = []
    for block in sorted(blocks, key=lambda b: _span(b)[0]):
        top, bottom = _span(block)
        for i, (line_top, line_bottom, members) in enumerate(lines):
            overlap = min(bottom, line_bottom) - max(top, line_top)
            if overlap > 0.5 * min(bottom - top, line_bottom - line_top):
                members.append(block)
                lines[i] = (min(top, line_top), max(bottom, line_bottom), members)
                break
        else:
            lines.append((top, bottom, [block]))
    lines.sort(key=lambda line: line[0])
    return [sorted(members, key=_left) for _, _, members in lines]


def reading_order(blocks: Sequence[B]) -> list[B]:
    return [block for line in group_lines(blocks) for block in line]


def join_lines(blocks: Sequence[_Boxed]) -> str:
    return "\n".join(" ".join(b.text for b in line) for line in group_lines(blocks))
