"""The single-router gateway distribution (occupancy law) and the drawn target of ``gateway_aware``:
exact law against its closed-form moments and against simulation, the shadow router's law after the
pools grow and tunnels are rebuilt, and the policy drawing its target from it."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from agents.balancer.occupancy import (LARGE_NETWORK, ShadowRouter, estimate_peers, occupancy_mean, occupancy_pmf,
                                       occupancy_variance, stirling2)
from agents.balancer.policy import GatewayAware
from agents.balancer.structures import Lease2
from testbed.i2p.analysis import chi2_sf

T0 = 1_800_000_000


def goodness_of_fit(counts: Counter[int], pmf) -> float:
    """p-value of a chi-square goodness-of-fit test, cells with expectation < 5 pooled into one."""
    n = sum(counts.values())
    cells, pooled_obs, pooled_exp = [], 0, 0.0
    for d, p in enumerate(pmf):
        exp = n * float(p)
        if exp >= 5:
            cells.append((counts[d], exp))
        else:
            pooled_obs, pooled_exp = pooled_obs + counts[d], pooled_exp + exp
    if pooled_exp:
        cells.append((pooled_obs, pooled_exp))
    if sum(o for o, _ in cells) != n:
        return 0.0  # a count the law cannot produce
    stat = sum((o - e) ** 2 / e for o, e in cells)
    return chi2_sf(stat, len(cells) - 1)


def test_stirling_numbers() -> None:
    assert [stirling2(4, k) for k in range(5)] == [0, 1, 7, 6, 1]
    assert stirling2(0, 0) == 1 and stirling2(5, 3) == 25 and stirling2(10, 5) == 42525
    assert stirling2(16, 9) == stirling2(15, 8) + 9 * stirling2(15, 9)  # the recurrence
    with pytest.raises(ValueError):
        stirling2(-1, 0)


@pytest.mark.parametrize("tunnels,peers", [(1, 1), (6, 4), (6, 5), (12, 6), (16, 11), (16, 12), (16, 40), (3, 9)])
def test_exact_law_has_the_closed_form_moments(tunnels: int, peers: int) -> None:
    pmf = occupancy_pmf(tunnels, peers)
    assert sum(pmf) == 1 and len(pmf) == min(tunnels, peers) + 1
    mean = sum(d * float(p) for d, p in enumerate(pmf))
    var = sum(d * d * float(p) for d, p in enumerate(pmf)) - mean ** 2
    assert mean == pytest.approx(occupancy_mean(tunnels, peers), abs=1e-9)
    assert var == pytest.approx(occupancy_variance(tunnels, peers), abs=1e-9)


def test_small_cases_by_hand() -> None:
    assert occupancy_pmf(2, 3) == (0, pytest.approx(1 / 3), pytest.approx(2 / 3))  # second throw repeats 1/3
    assert occupancy_pmf(0, 5) == (1,) and occupancy_pmf(4, 0) == (1,)
    assert occupancy_variance(16, 1) == 0 and occupancy_mean(16, 1) == 1


@pytest.mark.parametrize("tunnels,peers", [(6, 5), (16, 12)])
def test_exact_law_against_simulation(tunnels: int, peers: int) -> None:
    rng = random.Random(140)
    sim = Counter(len({rng.randrange(peers) for _ in range(tunnels)}) for _ in range(20_000))
    assert goodness_of_fit(sim, occupancy_pmf(tunnels, peers)) > 0.001
    # and the test can fail: the same counts against a law one peer short are rejected
    assert goodness_of_fit(sim, occupancy_pmf(tunnels, peers - 1)) < 1e-6
    assert goodness_of_fit(sim, occupancy_pmf(tunnels, peers + 1)) < 1e-6


def test_shadow_router_keeps_the_law_while_pools_grow_and_rebuild() -> None:
    rng = random.Random(7)
    counts = Counter()
    for _ in range(4000):
        shadow = ShadowRouter(rng)
        for t, k in ((3, 2), (6, 3), (9, 5), (12, 5), (16, 8), (16, 12), (16, 10)):  # routers arriving
            shadow.resize(t, k)
        shadow.rebuild(5)
        counts[shadow.distinct] += 1
    assert goodness_of_fit(counts, occupancy_pmf(16, 10)) > 0.001


def test_shadow_router_moves_by_at_most_one_per_rebuild() -> None:
    shadow = ShadowRouter(random.Random(3))
    shadow.resize(16, 12)
    seen = [shadow.distinct]
    for _ in range(2000):
        shadow.rebuild(1)
        seen.append(shadow.distinct)
    assert max(abs(a - b) for a, b in zip(seen, seen[1:])) == 1
    # over time it still shows the whole law (not a fixed count)
    assert goodness_of_fit(Counter(seen[::25]), occupancy_pmf(16, 12)) > 0.001
    before = list(shadow.cells)
    shadow.resize(17, 12)  # a rebuilt tunnel overlapping the old one: one more tunnel, the rest kept
    assert shadow.tunnels == 17 and shadow.cells[:16] == before
    shadow.resize(16, 12)  # the old one expires: the oldest goes
    assert shadow.cells == before[1:] + shadow.cells[-1:]


def l2(gw: int, tid: int, end: int = T0 + 600) -> Lease2:
    return Lease2(bytes([gw]) * 32, tid, end)


def ten_pools(base: int = 0) -> dict[str, list[Lease2]]:
    """8 routers x 3 tunnels through 12 peers: 24 tunnels offered, 16 fit."""
    rng = random.Random(base)
    return {f"r{i}": [l2(1 + rng.randrange(12), 100 * i + t + base) for t in range(3)] for i in range(8)}


def test_policy_draws_its_target_from_the_single_router_law() -> None:
    pools = ten_pools()
    peers = len({x.gateway for p in pools.values() for x in p})
    rng = random.Random(11)
    targets = Counter(GatewayAware(rng=rng).target(pools, T0) for _ in range(4000))
    assert goodness_of_fit(targets, occupancy_pmf(16, peers)) > 0.001
    assert len(targets) >= 4  # not one fixed count, as the mean target is
    assert {GatewayAware(draw=False).target(pools, T0) for _ in range(50)} == {round(occupancy_mean(16, peers))}


def test_policy_published_gateways_follow_the_target_and_own_generator() -> None:
    pools = ten_pools()
    state = random.getstate()
    published = Counter(len({x.gateway for x in GatewayAware()(pools, T0)}) for _ in range(300))
    assert random.getstate() == state  # seeded from os.urandom, no global random state touched
    assert len(published) >= 3 and all(len(GatewayAware()(pools, T0)) == 16 for _ in range(20))


def test_policy_target_moves_by_at_most_one_when_a_tunnel_is_rebuilt() -> None:
    policy = GatewayAware(rng=random.Random(5))
    pools = ten_pools()
    last = len({x.gateway for x in policy(pools, T0)})
    targets = [policy.shadow.distinct]
    rng = random.Random(9)
    for step in range(200):  # one tunnel of one router rebuilt through a peer already seen
        name = f"r{rng.randrange(8)}"
        pools[name] = pools[name][1:] + [l2(1 + rng.randrange(12), 10_000 + step)]
        policy(pools, T0)
        targets.append(policy.shadow.distinct)
    assert max(abs(a - b) for a, b in zip(targets, targets[1:])) <= 1 and len(set(targets)) >= 3
    assert last >= 1


def test_estimated_peers_invert_the_mean() -> None:
    assert estimate_peers(6, 4) == 6 and estimate_peers(24, 11) == 13  # 6 (1 - (5/6)^6) = 3.99
    assert estimate_peers(16, 16) == LARGE_NETWORK and estimate_peers(0, 0) == 0 and estimate_peers(1, 1) == 1
    assert estimate_peers(6, 3) == 3  # never fewer than were seen
    rng = random.Random(2)
    estimates = sorted(estimate_peers(30, len({rng.randrange(10) for _ in range(30)})) for _ in range(2001))
    assert 9 <= estimates[1000] <= 11  # the median estimate is about right
    # the seen count alone undercounts
    assert sorted(len({rng.randrange(10) for _ in range(6)}) for _ in range(201))[100] < 6


def test_policy_with_estimated_peers_draws_from_the_larger_network() -> None:
    # 6 tunnels over 4 gateways seen: a router picking from 4 peers, or from more and unlucky
    pools = {"r1": [l2(1, 1), l2(2, 2), l2(3, 3)], "r2": [l2(3, 4), l2(4, 5), l2(1, 6)]}
    policy = GatewayAware(rng=random.Random(1), estimate=True)
    policy(pools, T0)
    assert policy.shadow.peers == estimate_peers(6, 4) == 6
    plain = GatewayAware(rng=random.Random(1))
    plain(pools, T0)
    assert plain.shadow.peers == 4
