"""The sans-IO balancer: selection policy, answers, rate limit, publishers, router loss."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from agents.balancer.core import AnswerLeaseSet, BalancerCore, SetPublishing
from agents.balancer.keys import DestinationKeys
from agents.balancer.policy import fair_share, lease_key
from agents.balancer.structures import Lease, Lease2

KEYS = DestinationKeys.generate()
T0 = 1_800_000_000.0


def leases(tag: int, count: int, end_s: float = T0 + 600) -> tuple[Lease, ...]:
    return tuple(Lease(bytes([tag]) * 32, tag * 100 + i, int((end_s + i) * 1000)) for i in range(count))


def core(**kw: object) -> BalancerCore:
    return BalancerCore(build=KEYS.lease_set, **kw)  # type: ignore[arg-type]


def answered(actions: list[object]) -> dict[str, object]:
    return {a.router: a.lease_set for a in actions if isinstance(a, AnswerLeaseSet)}


# -- policy ---------------------------------------------------------------------------------------


def l2(tag: int, tid: int, end: int) -> Lease2:
    return Lease2(bytes([tag]) * 32, tid, end)


def test_fair_share_splits_evenly_and_takes_newest_first() -> None:
    per = {name: tuple(l2(t, i, 1000 + i) for i in range(10)) for name, t in (("a", 1), ("b", 2), ("c", 3), ("d", 4))}
    chosen = fair_share(per, now_s=0)
    assert len(chosen) == 16
    for tag in (1, 2, 3, 4):
        mine = [x for x in chosen if x.gateway[0] == tag]
        assert len(mine) == 4
        assert sorted(x.end_s for x in mine) == [1006, 1007, 1008, 1009]


def test_fair_share_gives_unused_slots_to_others_and_skips_expired() -> None:
    per = {"a": (l2(1, 1, 50), l2(1, 2, 500)), "b": tuple(l2(2, i, 900 + i) for i in range(20))}
    chosen = fair_share(per, now_s=100)
    assert [x.tunnel_id for x in chosen if x.gateway[0] == 1] == [2]
    assert len(chosen) == 16


@given(st.dictionaries(st.sampled_from("abcdefgh"), st.integers(0, 20), min_size=1))
def test_fair_share_properties(sizes: dict[str, int]) -> None:
    per = {n: tuple(l2(ord(n), i, 1000 + i) for i in range(k)) for n, k in sizes.items()}
    chosen = fair_share(per, now_s=0)
    total = sum(sizes.values())
    assert len(chosen) == min(16, total)
    assert len({lease_key(x) for x in chosen}) == len(chosen)
    counts = {n: sum(1 for x in chosen if x.gateway[0] == ord(n)) for n in sizes}
    # max-min fairness: a router gets fewer than another only when it has nothing more to give
    for n, c in counts.items():
        for m, d in counts.items():
            if c + 1 < d:
                assert c == sizes[n]


# -- core -----------------------------------------------------------------------------------------


def test_first_request_is_answered_at_once_with_a_signed_leaseset() -> None:
    c = core()
    assert c.router_up("r1", T0) == [SetPublishing("r1", True)]
    actions = c.leases_requested("r1", leases(1, 3), T0 + 1)
    ls = answered(actions)["r1"]
    assert ls.verify() and len(ls.leases) == 3 and ls.published == int(T0 + 1)
    assert c.publications == 1


def test_ticks_before_any_lease_request_build_nothing() -> None:
    c = core()
    c.router_up("r1", T0)
    assert c.tick(T0 + 5) == [] and c.current is None and c.publications == 0
    ls = answered(c.leases_requested("r1", leases(1, 2), T0 + 6))["r1"]
    assert len(ls.leases) == 2 and c.publications == 1


def test_a_request_with_no_leases_is_still_answered() -> None:
    c = core()
    c.router_up("r1", T0)
    ls = answered(c.leases_requested("r1", (), T0))["r1"]
    assert ls.leases == () and ls.expires == 0


def test_only_chosen_routers_publish_and_every_router_gets_the_same_leaseset() -> None:
    c = core(preferred_publishers=("r2",))
    assert c.router_up("r1", T0) == [SetPublishing("r1", True)]
    assert c.router_up("r2", T0) == [SetPublishing("r2", True), SetPublishing("r1", False)]
    c.leases_requested("r1", leases(1, 3), T0)
    actions = c.leases_requested("r2", leases(2, 3), T0 + 25)
    sets = answered(actions)
    assert set(sets) == {"r1", "r2"} and sets["r1"] is sets["r2"]
    assert {x.gateway[0] for x in sets["r1"].leases} == {1, 2}
    assert c.status()["routers"]["r2"]["publishing"] and not c.status()["routers"]["r1"]["publishing"]  # type: ignore[index]


def test_changes_within_20s_are_deferred_but_every_request_is_still_answered() -> None:
    c = core()
    c.router_up("r1", T0), c.router_up("r2", T0)
    first = answered(c.leases_requested("r1", leases(1, 2), T0))["r1"]
    # r2 asks 5 s later: answered at once with the current LeaseSet, the new one waits
    answer = answered(c.leases_requested("r2", leases(2, 2), T0 + 5))
    assert answer == {"r2": first}
    assert c.pending and c.next_deadline() == T0 + 20
    assert c.tick(T0 + 19) == []
    merged = answered(c.tick(T0 + 20))
    assert set(merged) == {"r1", "r2"}
    assert merged["r1"].published > first.published
    assert {x.gateway[0] for x in merged["r1"].leases} == {1, 2}
    assert c.publications == 2


def test_same_tunnels_with_drifting_end_dates_do_not_republish() -> None:
    c = core()
    c.router_up("r1", T0)
    c.leases_requested("r1", leases(1, 2), T0)
    actions = c.leases_requested("r1", leases(1, 2, end_s=T0 + 600.046), T0 + 40)
    assert answered(actions)["r1"].published == int(T0)
    assert c.publications == 1


def test_published_is_strictly_increasing_even_within_one_second() -> None:
    c = core(min_interval=0.0)
    c.router_up("r1", T0)
    a = answered(c.leases_requested("r1", leases(1, 1), T0))["r1"]
    b = answered(c.leases_requested("r1", leases(1, 2), T0 + 0.3))["r1"]
    d = answered(c.leases_requested("r1", leases(1, 3), T0 + 0.6))["r1"]
    assert a.published < b.published < d.published


def test_lost_router_leases_are_dropped_and_publisher_replaced() -> None:
    c = core(preferred_publishers=("r1",))
    c.router_up("r1", T0), c.router_up("r2", T0)
    c.leases_requested("r1", leases(1, 3), T0)
    c.leases_requested("r2", leases(2, 3), T0 + 30)
    actions = c.router_down("r1", T0 + 60)
    assert actions[0] == SetPublishing("r2", True)
    ls = answered(actions)["r2"]
    assert {x.gateway[0] for x in ls.leases} == {2}
    assert "r1" not in answered(actions)
    assert c.status()["routers"]["r1"] == {  # type: ignore[index]
        "up": False, "publishing": False, "leases": [], "requests": 1, "answers": 2, "sessions": 1, "identity": None,
    }


def test_router_coming_back_rejoins() -> None:
    c = core(preferred_publishers=("r1",))
    c.router_up("r1", T0), c.router_up("r2", T0)
    c.leases_requested("r1", leases(1, 2), T0)
    c.router_down("r1", T0 + 30)
    assert c.router_up("r1", T0 + 60) == [SetPublishing("r1", True), SetPublishing("r2", False)]
    c.leases_requested("r2", leases(2, 2), T0 + 61)
    ls = answered(c.leases_requested("r1", leases(1, 2, end_s=T0 + 700), T0 + 90))["r1"]
    assert {x.gateway[0] for x in ls.leases} == {1, 2}


def test_expired_leases_leave_at_the_next_tick() -> None:
    c = core()
    c.router_up("r1", T0), c.router_up("r2", T0)
    c.leases_requested("r1", leases(1, 2, end_s=T0 + 100), T0)
    c.leases_requested("r2", leases(2, 2, end_s=T0 + 600), T0 + 30)
    ls = answered(c.tick(T0 + 200))["r1"]
    assert {x.gateway[0] for x in ls.leases} == {2}


def test_never_more_than_16_leases_from_many_routers() -> None:
    c = core(min_interval=0.0)
    for i in range(1, 9):
        c.router_up(f"r{i}", T0)
        c.leases_requested(f"r{i}", leases(i, 5), T0 + i)
    assert c.current is not None and len(c.current.leases) == 16
    assert {x.gateway[0] for x in c.current.leases} == set(range(1, 9))


def test_all_routers_lost_sends_nothing() -> None:
    c = core()
    c.router_up("r1", T0)
    c.leases_requested("r1", leases(1, 2), T0)
    assert c.router_down("r1", T0 + 30) == []
    assert c.tick(T0 + 60) == []


# -- tunnels through a lost router ----------------------------------------------------------------

R1, R2, R3 = bytes([0xA1]) * 32, bytes([0xA2]) * 32, bytes([0xA3]) * 32  # the hosting routers' identities


def pool(*gateways_and_ids: tuple[bytes, int]) -> list[Lease]:
    return [Lease(gw, tid, int((T0 + 600) * 1000)) for gw, tid in gateways_and_ids]


def gateways_published(c: BalancerCore) -> set[tuple[bytes, int]]:
    assert c.current is not None
    return {lease_key(x) for x in c.current.leases}


def test_leases_through_a_lost_router_are_dropped_at_once_and_after_it_is_back() -> None:
    c = core(min_interval=0.0)
    for name, ident in (("r1", R1), ("r2", R2), ("r3", R3)):
        c.router_up(name, T0, identity=ident)
    other = bytes([7]) * 32
    c.leases_requested("r1", pool((R2, 11), (other, 12)), T0)
    c.leases_requested("r2", pool((R1, 21), (other, 22)), T0)
    c.leases_requested("r3", pool((R1, 31), (R2, 32)), T0)
    assert (R1, 21) in gateways_published(c) and (R1, 31) in gateways_published(c)
    c.min_interval = 20.0
    # r1 dies: its own leases AND r2's and r3's tunnels through it go, within min_interval
    actions = c.router_down("r1", T0 + 5)
    assert set(answered(actions)) == {"r2", "r3"}
    assert gateways_published(c) == {(other, 22), (R2, 32)}
    # r2 still offers its dead tunnel (i2pd notices late): it stays out
    c.leases_requested("r2", pool((R1, 21), (other, 22)), T0 + 30)
    assert (R1, 21) not in gateways_published(c)
    # r1 restarts: the old tunnels through it stay dead, a tunnel built through it since is fine
    c.router_up("r1", T0 + 40, identity=R1)
    c.leases_requested("r1", pool((R2, 13)), T0 + 40)
    c.leases_requested("r2", pool((R1, 21), (R1, 23), (other, 22)), T0 + 70)
    assert (R1, 23) in gateways_published(c) and (R1, 21) not in gateways_published(c)
    assert c.status()["dead_tunnels"] == 2 and c.status()["routers"]["r1"]["identity"] == R1.hex()  # type: ignore[index]
    # once no router offers a dead tunnel any more, it is forgotten
    c.leases_requested("r2", pool((R1, 23), (other, 22)), T0 + 100)
    c.leases_requested("r3", pool((R2, 32)), T0 + 100)
    c.tick(T0 + 101)
    assert c.dead == set()


def test_without_identities_only_the_lost_routers_own_leases_go() -> None:
    c = core(min_interval=0.0)
    c.router_up("r1", T0)
    c.router_up("r2", T0)
    c.leases_requested("r1", pool((R2, 11)), T0)
    c.leases_requested("r2", pool((R1, 21)), T0)
    c.router_down("r1", T0 + 5)
    assert gateways_published(c) == {(R1, 21)}
