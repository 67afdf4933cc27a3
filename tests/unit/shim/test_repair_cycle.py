"""A suspicion after a link-down/up cycle: the pairs the cut left unreachable (their Ti not yet over)
are the only ones that work when the other ISP goes silent.  The switch to them must be made, and
reported as a switch, within one probe round or so - not left to a later round, nor called a
confirmation because the old pair's failure had already handed them the preference."""

from agents.shim import ulp
from agents.shim.pairs import PairState
from agents.shim.timers import TUNED

from .test_reap import cut, established


def _down_up_then_silent_cut(cause):
    a, b, wire, ca, cb = established()
    la, lb = a.identity.ulids[0], b.identity.ulids[0]
    wire.drop = cut(("a1", "b1"), ("a1", "b2"), ("b1", "a1"), ("b2", "a1"))  # ISP A1's link down
    wire.now = 5.0
    wire.deliver(a.icmp_unreachable(5.0, la, lb))  # the router's ICMP error
    wire.run_until(6.0, step=0.01)
    assert ca.pairs.preferred.local != la
    wire.drop = lambda src, dst, msg: False  # ... and up again, before Ti is over
    wire.run_until(7.0, step=0.01)
    assert ca.pairs.pairs[(la, lb)].state is PairState.UNREACHABLE
    in_use = ca.pairs.preferred.key
    wire.drop = cut(("a2", "b1"), ("a2", "b2"), ("b1", "a2"), ("b2", "a2"))  # now ISP A2 goes silent
    since = len(a.events)
    wire.deliver(a.upper_layer_loss(7.0, la, lb, cause))
    wire.run_until(7.0 + 10 * TUNED.initial_probe_timeout, step=0.01)
    return a, ca, in_use, [e for e in list(a.events)[since:] if e.kind.startswith("pair-")]


def test_silent_cut_after_a_repair_switches_within_a_round():
    for cause in (ulp.RTO, ulp.TLP):
        a, ca, in_use, outcome = _down_up_then_silent_cut(cause)
        switched = [e for e in outcome if e.kind == "pair-switched"]
        assert switched, [e.as_dict() for e in outcome]
        assert switched[0].time <= 7.0 + TUNED.initial_probe_timeout + 0.02, switched[0].as_dict()
        assert switched[0].detail["cause"] == cause
        assert ca.pairs.preferred.key != in_use and ca.pairs.preferred.state is PairState.REACHABLE
        assert ca.pairs.preferred.local == a.identity.ulids[0]
        assert not [e for e in outcome if e.kind == "pair-confirmed"], [e.as_dict() for e in outcome]
        assert ca.reap.mode_name == "operational" and ca.reap.cause == ""
