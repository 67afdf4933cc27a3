"""The statistics that compare distinct-gateway counts of LeaseSets (chi-square, observations needed)."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from testbed.i2p.analysis import chi2_homogeneity, chi2_sf, observations_needed


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
