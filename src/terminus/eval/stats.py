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


def _binomial_tail_at_least(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), summed in log space (no overflow at large n)."""
    if k <= 0:
        return 1.0
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    total = 0.0
    for i in range(k, n + 1):
        log_term = (
            math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
            + i * log_p + (n - i) * log_q
        )  # fmt: skip
        total += math.exp(log_term)
    return min(1.0, total)


def clopper_pearson(k: int, n: int, alpha: float = 0.05) -> Interval:
    """Exact (Clopper–Pearson) interval for a binomial proportion ``k / n``, by bisection."""
    if n <= 0:
        return Interval(0.0, 0.0, 1.0)

    def solve(target: Callable[[float], float]) -> float:
        low, high = 0.0, 1.0
        for _ in range(60):
            middle = (low + high) / 2
            if target(middle) < 0:
                low = middle
            else:
                high = middle
        return (low + high) / 2

    half = alpha / 2
    lower = 0.0 if k == 0 else solve(lambda p: _binomial_tail_at_least(k, n, p) - half)
    upper = 1.0 if k == n else solve(lambda p: half - (1.0 - _binomial_tail_at_least(k + 1, n, p)))
    return Interval(k / n, lower, upper)


@dataclass(frozen=True)
class PairedExact:
    """B − A on paired right/wrong outcomes, exact given the discordant pairs.

    Conditional on ``discordant`` = b_only + a_only, b_only ~ Binomial(discordant, π);
    the difference is (discordant / n)·(2π − 1), so an exact interval for π gives one
    for the difference. With no discordant pair the difference is 0 and the interval
    bounds how often the two could disagree: |B − A| ≤ the upper Clopper–Pearson limit
    of 0 discordant in n. ``p_value`` is the exact two-sided McNemar (sign) test.
    """

    n: int
    b_only: int
    a_only: int
    difference: float
    low: float
    high: float
    p_value: float

    @property
    def discordant(self) -> int:
        return self.b_only + self.a_only


def paired_exact(b_only: int, a_only: int, n: int, alpha: float = 0.05) -> PairedExact:
    discordant = b_only + a_only
    if n <= 0:
        return PairedExact(0, 0, 0, 0.0, 0.0, 0.0, 1.0)
    if discordant == 0:
        bound = clopper_pearson(0, n, alpha).high
        return PairedExact(n, 0, 0, 0.0, -bound, bound, 1.0)
    share = clopper_pearson(b_only, discordant, alpha)
    scale = discordant / n
    smaller = min(b_only, a_only)
    p_value = min(1.0, 2 * (1.0 - _binomial_tail_at_least(smaller + 1, discordant, 0.5)))
    return PairedExact(
        n,
        b_only,
        a_only,
        (b_only - a_only) / n,
        scale * (2 * share.low - 1),
        scale * (2 * share.high - 1),
        p_value,
    )


#: Two-sided 95 % Student t quantiles by degrees of freedom (1–30); beyond, the normal one.
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042)  # fmt: skip


def mean_interval(values: Sequence[float]) -> Interval:
    """Mean of a few values (e.g. accuracy under each sampling seed) with a t 95 % interval."""
    n = len(values)
    if n == 0:
        return Interval(0.0, 0.0, 0.0)
    mean = sum(values) / n
    if n == 1:
        return Interval(mean, mean, mean)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    t = _T95[n - 2] if n - 1 <= len(_T95) else Z95
    half = t * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half)
