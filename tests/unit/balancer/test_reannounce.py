"""Re-announcements after a router's loss or return: the same leases, a newer ``published``, every few
seconds for a while, so each hosting router re-checks (and drops) a dead path to a client in seconds
instead of keeping it 30 s (docs/i2p-proposal-140.md, the post-restore outage at N = 4)."""

from __future__ import annotations

from agents.balancer.core import AnswerLeaseSet, BalancerCore
from agents.balancer.keys import DestinationKeys
from agents.balancer.policy import Primary, lease_key
from agents.balancer.structures import Lease

KEYS = DestinationKeys.generate()
T0 = 1_800_000_000.0


def leases(tag: int, count: int = 3) -> tuple[Lease, ...]:
    return tuple(Lease(bytes([tag]) * 32, tag * 100 + i, int((T0 + 3000 + i) * 1000)) for i in range(count))


def settled(**kw: object) -> BalancerCore:
    """Four routers under ``primary``, r1 carrying, everything published long ago."""
    c = BalancerCore(build=KEYS.lease_set, policy=Primary(), **kw)  # type: ignore[arg-type]
    for i, name in enumerate(("r1", "r2", "r3", "r4"), start=1):
        c.router_up(name, T0)
        c.leases_requested(name, leases(i), T0)
    c.tick(T0 + 400)  # the 180 s after the routers came up are over
    return c


def answers(actions: list[object]) -> dict[str, object]:
    return {a.router: a.lease_set for a in actions if isinstance(a, AnswerLeaseSet)}


def test_a_restored_router_makes_the_carrier_get_the_same_leases_again_every_few_seconds() -> None:
    c = settled(reannounce_every=5.0)
    c.router_down("r2", T0 + 500)  # a standby dies: r1's leases stay published
    before = c.current
    publications = c.status()["publications"]
    assert before is not None
    c.router_up("r2", T0 + 530)
    c.leases_requested("r2", leases(2), T0 + 531)
    seen = []
    for t in range(532, 720):
        out = answers(c.tick(T0 + t))
        if out:
            assert set(out) == {"r1"}  # the carrier: the one router whose leases are published
            seen.append((t, next(iter(out.values()))))
    times = [t for t, _ in seen]
    assert times and times[0] - 530 <= 6 and max(b - a for a, b in zip(times, times[1:])) <= 6
    assert times[-1] <= 530 + 180  # only while the sessions are young
    published = [ls.published for _, ls in seen]
    assert published == sorted(set(published)) and published[0] > before.published  # strictly newer
    for _, ls in seen:  # the same leases, the carrier's: no client is moved
        assert {lease_key(x) for x in ls.leases} == {lease_key(x) for x in before.leases}
    assert c.status()["reannouncements"] == len(seen)
    assert c.status()["publications"] == publications  # no new content: not counted as a publication


def test_under_fair_share_every_router_with_published_leases_gets_them() -> None:
    c = BalancerCore(build=KEYS.lease_set, reannounce_every=5.0)  # fair_share: every router's leases
    for i, name in enumerate(("r1", "r2", "r3"), start=1):
        c.router_up(name, T0)
        c.leases_requested(name, leases(i), T0)
    c.tick(T0 + 400)
    c.router_down("r3", T0 + 500)
    out = [answers(c.tick(T0 + t)) for t in range(501, 530)]
    assert {"r1", "r2"} in [set(x) for x in out if x]


def test_without_reannouncing_a_restored_router_changes_nothing() -> None:
    c = settled()
    c.router_down("r2", T0 + 500)
    c.router_up("r2", T0 + 530)
    assert set(answers(c.leases_requested("r2", leases(2), T0 + 531))) == {"r2"}  # only its own answer
    assert not any(answers(c.tick(T0 + t)) for t in range(532, 720))


def test_the_first_bring_up_is_not_reannounced() -> None:
    """Routers coming up for the first time carry no client sessions yet, and the publication-load
    experiments count the floodfill stores from there on."""
    c = BalancerCore(build=KEYS.lease_set, policy=Primary(), reannounce_every=5.0)
    for i, name in enumerate(("r1", "r2", "r3", "r4"), start=1):
        c.router_up(name, T0)
        c.leases_requested(name, leases(i), T0)
    assert not any(answers(c.tick(T0 + t)) for t in range(20, 300))
    assert c.status()["reannouncements"] == 0


def test_routers_restarted_before_the_first_leaseset_are_not_reannounced() -> None:
    """The lab's bootstrap restarts every i2pd once, right after the frontends' first sessions: a loss and a
    return before any LeaseSet existed, so no client has a session yet.  Re-announcing then sent the
    floodfill a store every 20 s for the first 3 minutes of every lab (the publication-load windows
    start 30 s after the Destination is ready)."""
    c = BalancerCore(build=KEYS.lease_set, policy=Primary(), reannounce_every=5.0)
    for name in ("r1", "r2"):
        c.router_up(name, T0)
    for name in ("r1", "r2"):
        c.router_down(name, T0 + 0.1)
        c.router_up(name, T0 + 1)
    for i, name in enumerate(("r1", "r2"), start=1):
        c.leases_requested(name, leases(i), T0 + 7)
    assert c.current is not None
    assert not any(answers(c.tick(T0 + t)) for t in range(8, 300))
    assert c.status()["reannouncements"] == 0


def test_a_restarted_balancer_reannounces_a_loss_among_routers_that_carried() -> None:
    """A balancer that started again has built nothing yet, but clients have sessions with the routers
    that carried the old LeaseSet: a loss then is re-announced as usual."""
    c = BalancerCore(build=KEYS.lease_set, policy=Primary(), reannounce_every=5.0)
    c.router_up("r1", T0, carried=True)
    c.router_up("r2", T0)
    c.router_down("r2", T0 + 0.5)
    c.leases_requested("r1", leases(1), T0 + 1)
    assert any(answers(c.tick(T0 + t)) for t in range(2, 30))


def test_no_reannouncements_in_steady_state() -> None:
    c = settled(reannounce_every=5.0)
    assert not any(answers(c.tick(T0 + t)) for t in range(400, 1000, 5))
    assert c.next_deadline() is None


def test_the_core_asks_to_be_woken_for_the_next_reannouncement() -> None:
    c = settled(reannounce_every=5.0)
    c.router_down("r3", T0 + 500)
    c.tick(T0 + 506)
    deadline = c.next_deadline()
    assert deadline is not None and T0 + 506 < deadline <= T0 + 511
