"""Confidence intervals: one accuracy, a paired difference, a bootstrap spread."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float


def wilson_interval(correct: int, n: int, z: float = Z95) -> Interval:
    """95 % Wilson score interval for ``correct / n`` (sensible at small n and at 0 or 1)."""
    if n <= 0:
        return Interval(0.0, 0.0, 0.0)
    p = correct / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # Clamped so rounding never puts the estimate outside its own interval (at p = 0 or 1).
    return Interval(p, max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half)))


def paired_difference(a: Sequence[float], b: Sequence[float], z: float = Z95) -> Interval:
    """Mean of ``b[i] - a[i]`` with a normal 95 % interval from the paired differences."""
    if len(a) != len(b):
        raise ValueError("paired samples must have the same length")
    n = len(a)
    if n == 0:
        return Interval(0.0, 0.0, 0.0)
    diffs = [y - x for x, y in zip(a, b, strict=True)]
    mean = sum(diffs) / n
    if n == 1:
        return Interval(mean, mean, mean)
    variance = sum((d - mean) ** 2 for d in diffs) / (n - 1)
    half = z * math.sqrt(variance / n)
    return Interval(mean, mean - half, mean + half)


def bootstrap_std(
    values: Sequence[float],
    statistic: Callable[[Sequence[float]], float],
    rounds: int = 1000,
    seed: int = 0,
) -> float:
    """Standard deviation of ``statistic`` over resamples with replacement (seeded)."""
    if not values:
        return 0.0
    rng = random.Random(seed)
    n = len(values)
    stats = [statistic([values[rng.randrange(n)] for _ in range(n)]) for _ in range(rounds)]
    mean = sum(stats) / rounds
    return math.sqrt(sum((s - mean) ** 2 for s in stats) / rounds)
