"""The ``primary`` lease policy: one router's leases at a time, sticky while that router lives, and the
balancer core republishing the standby's leases when the primary is lost."""

from __future__ import annotations

from agents.balancer.core import AnswerLeaseSet, BalancerCore, SetPublishing
from agents.balancer.keys import DestinationKeys
from agents.balancer.policy import POLICIES, Primary, fair_share
from agents.balancer.structures import Lease, Lease2

T0 = 1_800_000_000


def l2(tag: int, tid: int, end: int = T0 + 600) -> Lease2:
    return Lease2(bytes([tag]) * 32, tid, end)


def test_primary_publishes_one_router_and_sticks_to_it() -> None:
    policy = Primary()
    per = {"r2": [l2(2, 1), l2(2, 2)], "r1": [l2(1, 1)]}
    assert {x.gateway[0] for x in policy(per, T0)} == {1}  # first by name
    per["r0"] = [l2(9, 1)]  # a router appearing later does not take over
    assert {x.gateway[0] for x in policy(per, T0)} == {1}
    chosen = policy({"r0": per["r0"], "r2": per["r2"]}, T0)  # r1 gone: the next one by name
    assert {x.gateway[0] for x in chosen} == {9} and policy.current == "r0"
    assert policy({}, T0) == () and policy.current is None


def test_primary_ignores_expired_leases() -> None:
    policy = Primary()
    assert {x.gateway[0] for x in policy({"r1": [l2(1, 1, T0 - 5)], "r2": [l2(2, 1)]}, T0)} == {2}


def test_policy_table() -> None:
    assert POLICIES["fair_share"]() is fair_share and isinstance(POLICIES["primary"](), Primary)


def test_core_with_primary_moves_to_the_standby_when_the_primary_dies() -> None:
    keys = DestinationKeys.from_seed("primary-test")
    core = BalancerCore(build=keys.lease_set, policy=Primary(), min_interval=20.0)
    core.router_up("r1", T0)
    core.router_up("r2", T0)
    core.leases_requested("r1", [Lease(bytes([1]) * 32, 11, (T0 + 600) * 1000)], T0)
    core.leases_requested("r2", [Lease(bytes([2]) * 32, 22, (T0 + 600) * 1000)], T0 + 1)
    assert [x.tunnel_id for x in core.current.leases] == [11]
    actions = core.router_down("r1", T0 + 30)
    lease_sets = [a.lease_set for a in actions if isinstance(a, AnswerLeaseSet)]
    assert lease_sets and [x.tunnel_id for x in lease_sets[0].leases] == [22]
    assert lease_sets[0].published > T0


def test_the_carrier_publishes_and_a_standby_that_never_published_takes_over() -> None:
    """The preferred publisher r1 is a standby here (r2's leases were offered first): the carrier r2 is made
    the publisher, so its death promotes r1, told to publish before it is handed the new LeaseSet (i2pd
    then publishes at once; a standby that had published would wait up to 20 s)."""
    keys = DestinationKeys.from_seed("primary-test")
    core = BalancerCore(build=keys.lease_set, policy=Primary(), min_interval=20.0, preferred_publishers=("r1",))
    assert core.router_up("r1", T0) == [SetPublishing("r1", True)]
    core.router_up("r2", T0)
    actions = core.leases_requested("r2", [Lease(bytes([2]) * 32, 22, (T0 + 600) * 1000)], T0)
    assert [x.tunnel_id for x in core.current.leases] == [22]
    assert actions[:2] == [SetPublishing("r2", True), SetPublishing("r1", False)]
    core.leases_requested("r1", [Lease(bytes([1]) * 32, 11, (T0 + 600) * 1000)], T0 + 1)
    assert [x.tunnel_id for x in core.current.leases] == [22]  # sticky: r2 still carries and publishes
    assert core.routers["r2"].publishing and not core.routers["r1"].publishing
    actions = core.router_down("r2", T0 + 30)
    assert actions[0] == SetPublishing("r1", True)
    assert isinstance(actions[1], AnswerLeaseSet) and [x.tunnel_id for x in actions[1].lease_set.leases] == [11]
