"""Confidence intervals checked against values computed by hand."""

from __future__ import annotations

import math

import pytest

from terminus.eval.stats import bootstrap_std, paired_difference, wilson_interval


def test_wilson_matches_the_formula_by_hand() -> None:
    # 7 of 10, z = 1.96: centre = (0.7 + 0.19208) / 1.38416 = 0.644491,
    # half = 1.96 * sqrt(0.021 + 0.009604) / 1.38416 = 0.247715
    interval = wilson_interval(7, 10, z=1.96)
    assert interval.estimate == 0.7
    assert interval.low == pytest.approx(0.396776, abs=1e-5)
    assert interval.high == pytest.approx(0.892206, abs=1e-5)


def test_wilson_at_the_edges_stays_inside_zero_one() -> None:
    none_right = wilson_interval(0, 20)
    assert none_right.low == 0.0 and 0.0 < none_right.high < 0.2
    all_right = wilson_interval(20, 20)
    assert all_right.high == 1.0 and 0.8 < all_right.low < 1.0
    assert wilson_interval(0, 0).high == 0.0


def test_paired_difference_by_hand() -> None:
    a = [1, 1, 0, 0, 1, 0]
    b = [1, 0, 1, 1, 1, 1]
    # diffs 0,-1,1,1,0,1: mean 1/3; sample variance = (1/9+16/9+4/9+4/9+1/9+4/9)/5 = 2/3
    diff = paired_difference(a, b, z=2.0)
    assert diff.estimate == pytest.approx(1 / 3)
    half = 2.0 * math.sqrt((2 / 3) / 6)
    assert diff.low == pytest.approx(1 / 3 - half)
    assert diff.high == pytest.approx(1 / 3 + half)


def test_identical_runs_differ_by_exactly_zero() -> None:
    same = [1.0, 0.0, 1.0, 1.0]
    diff = paired_difference(same, same)
    assert (diff.estimate, diff.low, diff.high) == (0.0, 0.0, 0.0)


def test_paired_difference_needs_pairs() -> None:
    with pytest.raises(ValueError):
        paired_difference([1.0], [1.0, 0.0])


def test_bootstrap_std_is_seeded_and_near_the_standard_error() -> None:
    values = [float(i % 2) for i in range(400)]  # mean 0.5, standard error 0.025
    first = bootstrap_std(values, lambda v: sum(v) / len(v), rounds=300, seed=1)
    again = bootstrap_std(values, lambda v: sum(v) / len(v), rounds=300, seed=1)
    assert first == again
    assert 0.018 < first < 0.032
    assert bootstrap_std([], lambda v: 0.0) == 0.0


def test_clopper_pearson_matches_published_values() -> None:
    from terminus.eval.stats import clopper_pearson

    # 0 of 10: upper = 1 − 0.025^(1/10); 5 of 10: 0.187086–0.812914 (standard tables).
    assert clopper_pearson(0, 10).high == pytest.approx(1 - 0.025 ** (1 / 10), abs=1e-9)
    five = clopper_pearson(5, 10)
    assert five.low == pytest.approx(0.187086, abs=1e-6)
    assert five.high == pytest.approx(0.812914, abs=1e-6)
    assert clopper_pearson(10, 10).low == pytest.approx(0.025 ** (1 / 10), abs=1e-9)


def test_paired_exact_interval_and_mcnemar() -> None:
    from terminus.eval.stats import paired_exact

    none = paired_exact(0, 0, 200)
    assert none.difference == 0 and none.p_value == 1.0
    assert none.high == pytest.approx(1 - 0.025 ** (1 / 200)) and none.low == -none.high
    some = paired_exact(5, 1, 100)
    assert some.difference == pytest.approx(0.04)
    assert some.p_value == pytest.approx(2 * 7 / 64)  # 2·P(X ≤ 1), X ~ Bin(6, ½)
    assert some.low < 0 < some.difference < some.high
    # The interval lies within what the discordant share allows: |B − A| ≤ 6/100.
    assert some.low >= -0.06 and some.high <= 0.06
