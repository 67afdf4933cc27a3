"""REAP (RFC 5534) and locator updates between two engines, with paths cut on the wire."""

import pytest

from agents.shim import messages as m
from agents.shim.pairs import PairState
from agents.shim.timers import TUNED

from .lab import Wire, events, make_engine


def established(profile=TUNED):
    a, b = make_engine("a", 1, profile), make_engine("b", 2, profile)
    wire = Wire(a, b)
    wire.deliver(a.connect(0.0, b.identity.ulids[0]))
    (ca,), (cb,) = a.contexts.values(), b.contexts.values()
    return a, b, wire, ca, cb


def cut(*prefix_pairs):
    """Drop packets whose (source /64 prefix, destination prefix) is in ``prefix_pairs`` (hex)."""
    def rule(src, dst, msg):
        return any(src.packed[:6].hex().endswith(s) and dst.packed[:6].hex().endswith(d) for s, d in prefix_pairs)
    return rule


def test_keepalive_is_sent_when_only_receiving():
    a, b, wire, ca, cb = established()
    la, lb = a.identity.ulids[0], b.identity.ulids[0]
    wire.log.clear()
    b.observe(1.0, lb, la, outgoing=False)  # B receives data and sends none
    wire.now = 1.0
    wire.run_until(1.0 + TUNED.send_timeout / 3 + 0.1)  # A advertised its Send Timeout
    assert [type(x).__name__ for _, _, _, x in wire.log] == ["Keepalive"]
    assert wire.log[0][1:3] == (lb, la)
    assert ca.reap.last_rx is not None  # A counted it as a sign of life


def test_send_timeout_then_exploration_finds_a_working_pair():
    a, b, wire, ca, cb = established()
    la, lb = a.identity.ulids[0], b.identity.ulids[0]
    wire.drop = cut(("a1", "b1"), ("b1", "a1"))  # the pair in use dies, both directions
    wire.log.clear()
    a.observe(10.0, la, lb, outgoing=True)  # A keeps sending, hears nothing
    wire.now = 10.0
    wire.run_until(10.0 + TUNED.send_timeout - 0.1)
    assert ca.reap.mode_name == "operational"
    wire.run_until(10.0 + TUNED.send_timeout + 2.0)
    detected = events(a, "failure-detected")
    assert detected and detected[0].time <= 10.0 + TUNED.send_timeout + 0.05
    switched = events(a, "pair-switched")
    assert switched, [e.as_dict() for e in a.events]
    pref = ca.pairs.preferred
    assert pref.state is PairState.REACHABLE and (pref.local, pref.remote) != (la, lb)
    assert cb.pairs.preferred.key == (pref.remote, pref.local)  # B agrees on the mirror pair
    assert ca.reap.mode_name == cb.reap.mode_name == "operational"
    assert ca.pairs.pairs[(la, lb)].state in (PairState.UNREACHABLE, PairState.TEST)
    probes = [x for _, _, _, x in wire.log if isinstance(x, m.Probe)]
    assert probes and all(len(p.sent) >= 1 for p in probes)


def test_exploration_backs_off_and_bounds_parallel_probes():
    a, b, wire, ca, cb = established()
    la, lb = a.identity.ulids[0], b.identity.ulids[0]
    wire.drop = lambda s, d, msg: True  # nothing gets through any more
    wire.log.clear()
    a.observe(0.0, la, lb, outgoing=True)
    wire.run_until(30.0, step=0.01)
    rounds = {}
    for t, src, dst, msg in wire.log:
        if isinstance(msg, m.Probe) and src in a.identity.locators:
            rounds.setdefault(t, []).append((src, dst))
    times = sorted(rounds)
    gaps = [round(b2 - b1, 2) for b1, b2 in zip(times, times[1:])]
    assert gaps[:7] == pytest.approx([0.2, 0.2, 0.2, 0.2, 0.4, 0.8, 1.6], abs=0.011)  # 4 initial probes, then doubling
    assert max(gaps) == pytest.approx(TUNED.max_probe_timeout, abs=0.011)
    assert max(len(v) for v in rounds.values()) <= TUNED.max_parallel_probes
    assert ca.reap.mode_name == "exploring"


def test_interface_down_on_the_preferred_locator_explores_at_once():
    a, b, wire, ca, cb = established()
    wire.drop = cut(("a1", "b1"), ("a1", "b2"), ("b1", "a1"), ("b2", "a1"))
    wire.now = 5.0
    wire.deliver(a.interface_down(5.0, a.identity.ulids[0]))
    assert events(a, "failure-detected")[0].detail["cause"] == "interface-down"
    wire.run_until(7.0)
    assert ca.pairs.preferred.local == a.identity.ulids[1] and ca.pairs.preferred.state is PairState.REACHABLE
    assert all(p.pins == {"interface-down"} for k, p in ca.pairs.pairs.items() if k[0] == a.identity.ulids[0])


def test_deprecated_prefix_and_icmp_unreachable_reach_the_pairs():
    a, b, wire, ca, cb = established()
    prefix = a.identity.ulids[1].packed[:8]
    a.prefix_deprecated(1.0, prefix)
    assert all(p.state is PairState.UNREACHABLE for k, p in ca.pairs.pairs.items() if k[0] == a.identity.ulids[1])
    a.prefix_valid(2.0, prefix)
    assert all(p.state is PairState.INDETERMINATE for k, p in ca.pairs.pairs.items() if k[0] == a.identity.ulids[1])
    actions = a.icmp_unreachable(3.0, a.identity.ulids[0], b.identity.ulids[0])
    assert ca.pairs.preferred.key == (a.identity.ulids[0], b.identity.ulids[0])
    # an ICMP error on the pair in use starts exploration at once (no Send Timeout wait)
    assert ca.pairs.preferred.state is PairState.TEST
    assert [e for e in events(a, "failure-detected") if e.detail["cause"] == "icmp-unreachable"]
    assert [x for x in actions if type(getattr(x, "message", None)).__name__ == "Probe"]


def test_update_request_carries_new_locators_and_is_acknowledged():
    a, b, wire, ca, cb = established()
    wire.log.clear()
    wire.now = 1.0
    wire.deliver(a.set_local_locators(1.0, [a.identity.ulids[0]]))
    assert wire.types() == ["UpdateRequest", "UpdateAck"]
    assert cb.peer.locators == (a.identity.ulids[0],) and cb.peer.generation == 1
    assert set(cb.pairs.pairs) == {(loc, a.identity.ulids[0]) for loc in b.identity.locators}
    assert ca.pending is None and events(a, "update-acknowledged")
    wire.deliver(a.set_local_locators(2.0, list(a.identity.hba_set.addresses)))  # the prefix comes back
    assert len(cb.peer.locators) == 2 and cb.peer.generation == 2 and len(cb.pairs.pairs) == 4


def test_lost_update_requests_are_retransmitted_with_backoff():
    a, b, wire, ca, cb = established()
    wire.drop = lambda s, d, msg: isinstance(msg, m.UpdateRequest)
    wire.log.clear()
    wire.now = 1.0
    wire.deliver(a.set_local_locators(1.0, [a.identity.ulids[0]]))
    wire.run_until(40.0, step=0.1)
    times = [round(t, 1) for t, _, _, msg in wire.log if isinstance(msg, m.UpdateRequest)]
    assert times[:4] == [1.0, 2.0, 4.0, 8.0]  # waits of 1 s, then doubling (tuned profile)
    assert events(a, "update-unacknowledged")


def test_pairs_view_shows_fig21_states_for_shimctl():
    a, b, wire, ca, cb = established()
    rows = a.pairs_view()
    assert len(rows) == 4 and sum(r["preferred"] for r in rows) == 1
    assert {r["state"] for r in rows} == {"reachable", "indeterminate"}
