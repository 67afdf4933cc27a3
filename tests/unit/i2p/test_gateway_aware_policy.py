"""The ``gateway_aware`` lease policy: a multihomed LeaseSet published through few, sticky inbound
gateways, every live router still reachable, and the balancer core using it."""

from __future__ import annotations

import pytest

from agents.balancer.core import BalancerCore
from agents.balancer.keys import DestinationKeys
from agents.balancer.policy import PEER_MEMORY_S, GatewayAware, fair_share, make_policy, single_router_gateways
from agents.balancer.structures import Lease, Lease2

T0 = 1_800_000_000


def l2(gw: int, tid: int, end: int = T0 + 600) -> Lease2:
    return Lease2(bytes([gw]) * 32, tid, end)


def gateways(leases: tuple[Lease2, ...]) -> set[int]:
    return {x.gateway[0] for x in leases}


def routers_reached(per: dict[str, list[Lease2]], leases: tuple[Lease2, ...]) -> set[str]:
    keys = {(x.gateway, x.tunnel_id) for x in leases}
    return {name for name, pool in per.items() if any((x.gateway, x.tunnel_id) in keys for x in pool)}


# Four routers, three tunnels each, gateways drawn from a 6-router network (no router is its own gateway).
POOLS = {"r1": [l2(2, 11), l2(5, 12), l2(6, 13)], "r2": [l2(1, 21), l2(5, 22), l2(6, 23)],
         "r3": [l2(5, 31), l2(1, 32), l2(4, 33)], "r4": [l2(6, 41), l2(2, 42), l2(3, 43)]}


def test_fewer_gateways_than_fair_share_and_every_router_reached() -> None:
    chosen = GatewayAware(gateways=2)(POOLS, T0)
    assert len(gateways(fair_share(POOLS, T0))) == 6
    assert len(gateways(chosen)) == 2 and gateways(chosen) == {5, 6}  # 5 reaches r1-r3, 6 reaches r4
    assert routers_reached(POOLS, chosen) == set(POOLS)
    # every lease through a chosen gateway is published, not just one per router
    assert len(chosen) == sum(x.gateway[0] in {5, 6} for pool in POOLS.values() for x in pool) == 6


def test_single_router_model() -> None:
    assert single_router_gateways(12, 10_000) == 12  # a large network: every tunnel its own gateway
    assert single_router_gateways(12, 1) == 1 and single_router_gateways(16, 5) == 5  # saturated
    assert single_router_gateways(12, 6) == 5  # 6 (1 - (5/6)^12) = 5.3
    assert single_router_gateways(0, 6) == 0 and single_router_gateways(3, 0) == 0


def test_mean_target_is_one_router_of_the_same_size() -> None:
    policy = GatewayAware(draw=False)
    # 12 tunnels over the 6 gateways seen: one router with 12 tunnels among 6 peers shows 5
    assert policy.target(POOLS, T0) == 5
    assert len(gateways(policy(POOLS, T0))) == 5
    # the peers seen are remembered for a while after a router stops using them, then forgotten
    policy({"r1": POOLS["r1"]}, T0 + 60)
    assert policy.target({"r1": POOLS["r1"]}, T0 + 60) == 3  # 3 tunnels: at most 3 gateways
    assert len(policy.peers_seen) == 6
    later = T0 + 60 + PEER_MEMORY_S + 1
    policy({"r1": [l2(2, 14, later + 600), l2(5, 15, later + 600), l2(6, 16, later + 600)]}, later)
    assert set(policy.peers_seen) == {bytes([g]) * 32 for g in (2, 5, 6)}


def test_cover_wins_over_a_too_small_target() -> None:
    disjoint = {"r1": [l2(1, 1)], "r2": [l2(2, 1)], "r3": [l2(3, 1)]}
    chosen = GatewayAware(gateways=1)(disjoint, T0)
    assert gateways(chosen) == {1, 2, 3} and routers_reached(disjoint, chosen) == set(disjoint)


def test_gateways_stick_while_offered_and_change_when_a_tunnel_is_rebuilt() -> None:
    policy = GatewayAware(gateways=2)
    first = gateways(policy(POOLS, T0))
    # r4 rebuilds 2 -> 7: the published set stays, since 6 still reaches r4
    rebuilt = {**POOLS, "r4": [l2(6, 41), l2(7, 44), l2(3, 43)]}
    assert gateways(policy(rebuilt, T0)) == first
    # 6 disappears everywhere: it is replaced, 5 is kept
    gone = {name: [x for x in pool if x.gateway[0] != 6] for name, pool in rebuilt.items()}
    after = gateways(policy(gone, T0))
    assert 5 in after and 6 not in after and routers_reached(gone, policy(gone, T0)) == set(gone)


def test_expired_leases_and_empty_input() -> None:
    policy = GatewayAware(gateways=1)
    assert gateways(policy({"r1": [l2(1, 1, T0 - 1), l2(2, 2)]}, T0)) == {2}
    assert policy({}, T0) == () and policy.chosen == ()
    assert policy({"r1": [l2(1, 1, T0 - 1)]}, T0) == ()


def test_limit_is_respected() -> None:
    big = {f"r{i}": [l2(9, 100 * i + t) for t in range(8)] for i in range(3)}
    assert len(GatewayAware(gateways=1)(big, T0)) == 16


def test_the_lease_limit_never_drops_a_chosen_gateway() -> None:
    # 10 routers x 3 tunnels: 30 leases, 16 fit. Gateway 10 carries only r0's oldest tunnel: a fair share
    # by router (the newest 1-2 of each) would drop it and show 9 of the 10 chosen gateways
    many = {f"r{i}": [l2(1 + (i + t) % 9, 10 * i + t, T0 + 600 + t) for t in range(3)] for i in range(10)}
    many["r0"][0] = l2(10, 0, T0 + 500)
    assert len(gateways(fair_share({n: [x for x in p] for n, p in many.items()}, T0))) == 9
    chosen = GatewayAware(gateways=10)(many, T0)
    assert len(chosen) == 16 and gateways(chosen) == set(range(1, 11))
    assert routers_reached(many, chosen) == set(many)


def test_make_policy_and_bad_target() -> None:
    assert make_policy("gateway_aware", 3).gateways == 3
    assert make_policy("fair_share") is fair_share
    with pytest.raises(ValueError, match="known: fair_share, gateway_aware, primary"):
        make_policy("random")
    with pytest.raises(ValueError, match="at least 1"):
        GatewayAware(0)


def test_core_publishes_through_the_chosen_gateways_and_drops_a_lost_router() -> None:
    keys = DestinationKeys.from_seed("gateway-aware-test")
    core = BalancerCore(build=keys.lease_set, policy=GatewayAware(gateways=2), min_interval=0.0)
    now = float(T0)
    for name, pool in POOLS.items():
        core.router_up(name, now)
        core.leases_requested(name, [Lease(x.gateway, x.tunnel_id, x.end_s * 1000) for x in pool], now)
    # routers arrive one by one; the gateways chosen early stick as long as they reach everyone
    assert core.current is not None and len(gateways(core.current.leases)) == 2
    assert routers_reached(POOLS, core.current.leases) == set(POOLS)
    before = gateways(core.current.leases)
    core.router_down("r4", now + 1)
    assert gateways(core.current.leases) == before
    assert not any(x.tunnel_id in (41, 42, 43) for x in core.current.leases)
