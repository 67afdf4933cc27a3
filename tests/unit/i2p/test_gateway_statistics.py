"""The statistics that compare distinct-gateway counts of LeaseSets (chi-square, observations needed)."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from testbed.i2p.analysis import (chi2_homogeneity, chi2_sf, kl_divergence, observations_needed, permutation_p,
                                 smoothed, sprt_floor, sprt_observations)


@pytest.mark.parametrize("x, df, p", [(3.841, 1, 0.05), (5.991, 2, 0.05), (6.635, 1, 0.01), (1.0, 3, 0.8013),
                                      (30.0, 2, 3.059e-7)])
def test_chi2_sf_matches_tables(x: float, df: int, p: float) -> None:
    assert chi2_sf(x, df) == pytest.approx(p, rel=2e-3)


def test_homogeneity_tells_different_samples_apart_and_not_equal_ones() -> None:
    same = chi2_homogeneity(Counter({3: 10, 4: 10}), Counter({3: 11, 4: 9}))
    assert same.p_value > 0.5
    differ = chi2_homogeneity(Counter({3: 30}), Counter({4: 25, 3: 5}))
    assert differ.p_value < 1e-6 and differ.df == 1


def test_observations_needed() -> None:
    assert observations_needed(Counter({3: 5}), Counter({3: 9})) == math.inf
    near = observations_needed(Counter({3: 6, 4: 4}), Counter({3: 5, 4: 5}))
    far = observations_needed(Counter({3: 10}), Counter({4: 9, 3: 1}))
    assert far < 2 < 100 < near


def test_permutation_p_agrees_with_chi_square_on_large_samples_and_rejects_clear_differences() -> None:
    a, b = Counter({3: 40, 4: 40}), Counter({3: 44, 4: 36})
    assert permutation_p(a, b, rounds=2000) == pytest.approx(chi2_homogeneity(a, b).p_value, abs=0.15)  # 2x2: discrete
    assert permutation_p(Counter({9: 10}), Counter({7: 3, 8: 3, 9: 1, 10: 3}), rounds=2000) < 0.01
    assert permutation_p(Counter({3: 5, 4: 5}), Counter({3: 5, 4: 5}), rounds=500) > 0.9


def test_smoothing_and_divergence() -> None:
    p = smoothed(Counter({3: 9}), [3, 4])
    assert p[3] == pytest.approx(9.5 / 10) and p[4] == pytest.approx(0.5 / 10) and sum(p.values()) == pytest.approx(1)
    assert kl_divergence(p, p) == 0
    assert kl_divergence({3: 1.0}, {3: 0.5, 4: 0.5}) == pytest.approx(math.log(2))


def test_sprt_observations() -> None:
    # a coin that shows heads 9 times in 10 against a fair one (smoothed: 0.864 vs 0.5): Wald's E[N]
    expected = (0.95 * math.log(19) + 0.05 * math.log(0.05 / 0.95)) / kl_divergence(
        smoothed(Counter({1: 9, 0: 1}), [0, 1]), smoothed(Counter({1: 5, 0: 5}), [0, 1]))
    assert sprt_observations(Counter({1: 9, 0: 1}), Counter({1: 5, 0: 5})) == pytest.approx(expected)
    assert sprt_observations(Counter({3: 5}), Counter({3: 5})) == math.inf
    near = sprt_observations(Counter({3: 6, 4: 4}), Counter({3: 5, 4: 5}))
    far = sprt_observations(Counter({3: 10}), Counter({4: 10}))
    assert far < 5 < 50 < near


def test_sprt_floor_is_what_equal_laws_give_by_chance() -> None:
    ref = Counter({7: 2, 8: 3, 9: 3, 10: 2})
    floor = sprt_floor(ref, 10)
    assert 4 < floor < 200  # ten against ten from one law: a finite, not tiny, figure
    assert sprt_observations(Counter({12: 10}), ref) < floor / 3  # a law far off goes well below it
