"""Expectations evaluated on synthetic traces: windows, fault references, failover, verdicts."""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed.scenario import analysis as a
from testbed.scenario import measures as m
from testbed.scenario.load import parse_scenario
from testbed.scenario.model import METRICS
from testbed.yamlmarks import MarkedDoc

T0 = 1_000_000.0


def scenario(expect: list[dict]) -> object:
    data = {
        "name": "synthetic", "lab": "x", "duration": 10,
        "traffic": [{"name": "t1", "kind": "tcpseq", "from": "h1", "to": "s", "reconnect": True},
                    {"name": "p1", "kind": "probe", "from": "h1", "to": "s", "interval_ms": 100},
                    {"name": "u1", "kind": "udpcbr", "from": "h1", "to": "s", "rate_pps": 100}],
        "faults": [{"name": "cut", "at": 3, "kind": "link-down", "link": "l1", "until": 6}],
        "expect": expect,
    }
    return parse_scenario(MarkedDoc(data, "synthetic.yaml"), Path(".")).scenario


def ticks(start: float, end: float, step: float) -> list[float]:
    return [T0 + start + i * step for i in range(int(round((end - start) / step)))]


def tcp_trace() -> m.FlowTrace:
    """Connection 1 carries data 0..3 s, breaks at 3.5 s; connection 2 carries data from 4.2 s."""
    first, second = ticks(0, 3, 0.01), ticks(4.2, 10, 0.01)
    deliveries = tuple(m.Delivery(t, i, t, conn=1) for i, t in enumerate(first)) + tuple(
        m.Delivery(t, 400 + i, t, conn=2) for i, t in enumerate(second))
    attempts = (m.Attempt(T0, True, 0.3), m.Attempt(T0 + 3.6, False, None, "ECONNREFUSED"),
                m.Attempt(T0 + 4.2, True, 0.4))
    conns = (m.Connection(1, T0, T0 + 3.5, "ECONNRESET"), m.Connection(2, T0 + 4.2))
    return m.FlowTrace("t1", "tcpseq", deliveries, (0, 1000), ((0, T0), (1000, T0 + 10)), attempts, conns,
                       started=T0)


def probe_trace() -> m.FlowTrace:
    attempts = tuple(m.Attempt(t, not (T0 + 3 <= t < T0 + 5), 1.0 if not (T0 + 3 <= t < T0 + 5) else None)
                     for t in ticks(0, 10, 0.1))
    deliveries = tuple(m.Delivery(x.t + 0.002, i) for i, x in enumerate(attempts) if x.ok)
    return m.FlowTrace("p1", "probe", deliveries, attempts=attempts, started=T0)


def udp_trace() -> m.FlowTrace:
    received = [s for s in range(1000) if not 300 <= s < 350]
    deliveries = tuple(m.Delivery(T0 + s / 100, s, T0 + s / 100) for s in received)
    return m.FlowTrace("u1", "udpcbr", deliveries, (0, 1000), ((0, T0), (1000, T0 + 10)), started=T0)


RUN = a.RunRecord(T0, T0 + 10, (a.FaultEvent("cut", "link-down", T0 + 3.0, T0 + 6.0),))
TRACES = {"t1": tcp_trace(), "p1": probe_trace(), "u1": udp_trace()}


def verdicts(expect: list[dict]) -> list[a.Verdict]:
    return list(a.analyse(scenario(expect), RUN, TRACES).verdicts)


def test_every_metric_in_the_model_has_an_implementation():
    assert set(a.METRICS) == set(METRICS)


def test_max_gap_and_failover_measured_from_the_fault():
    gap, failover, kept, broken = verdicts([
        {"flow": "t1", "max_gap_ms": {"lt": 1000}},
        {"flow": "t1", "failover_ms": {"lt": 1000, "after": "cut"}},
        {"flow": "t1", "connection_kept": {"eq": False, "after": "cut"}},
        {"flow": "t1", "connections_broken": {"eq": 1}},
    ])
    assert gap.measured == pytest.approx(1210, abs=1) and not gap.passed  # 2.99 -> 4.2
    assert failover.measured == pytest.approx(1200, abs=1) and not failover.passed
    assert kept.measured == 0.0 and kept.passed
    assert broken.measured == 1.0 and broken.passed
    assert failover.window == (3.0, 10.0)


def test_new_connections_before_and_after_with_offsets():
    before, during, after_undo = verdicts([
        {"flow": "p1", "new_connections_ok": {"ge": 0.99, "before": "cut"}},
        {"flow": "p1", "new_connections_ok": {"le": 0.05, "after": "cut", "before": "cut+2"}},
        {"flow": "p1", "new_connections_ok": {"ge": 0.95, "after": "cut.end"}},
    ])
    assert before.measured == 1.0 and before.passed
    assert during.measured == 0.0 and during.passed and during.window == (3.0, 5.0)
    assert after_undo.measured == 1.0 and after_undo.passed


def test_loss_over_the_whole_flow_and_in_a_window():
    whole, after = verdicts([{"flow": "u1", "loss": {"le": 0.01}}, {"flow": "u1", "loss": {"eq": 0, "after": 4}}])
    assert whole.measured == pytest.approx(0.05) and not whole.passed
    assert after.measured == 0.0 and after.passed


def test_never_recovered_fails_a_failover_bound_and_nothing_to_measure_fails_too():
    dead = m.FlowTrace("t1", "tcpseq", tuple(m.Delivery(t, i, conn=1) for i, t in enumerate(ticks(0, 3, 0.01))),
                       started=T0)
    s = scenario([{"flow": "t1", "failover_ms": {"lt": 60000}}, {"flow": "p1", "new_connections_ok": {"ge": 0.5}}])
    never, empty = a.analyse(s, RUN, {"t1": dead}).verdicts
    assert never.measured is None and not never.passed and never.note == "never recovered"
    assert empty.measured is None and not empty.passed and "nothing to measure" in empty.note


def test_flow_results_summarise_gaps_failover_and_attempt_windows():
    result = a.analyse(scenario([]), RUN, TRACES)
    t1, p1, u1 = result.flows
    assert [(round(g.start, 2), round(g.end, 2), g.open) for g in t1.gaps] == [(2.99, 4.2, False)]
    assert t1.failovers[0].fault == "cut" and t1.failovers[0].failover_ms == pytest.approx(1200, abs=1)
    assert (t1.connections_opened, t1.connections_broken) == (2, 1)
    (window,) = p1.attempt_windows
    assert (window.before_ok, window.before_total) == (30, 30)
    assert (window.after_ok, window.after_total) == (50, 70)
    assert (u1.sent, u1.lost, u1.reordered) == (1000, 50, 0)
    assert sum(u1.timeline) == 950 and len(u1.timeline) == 100
    assert result.passed  # no expectations, nothing failed


def test_window_starts_when_the_agent_started_not_at_time_zero():
    late = m.FlowTrace("u1", "udpcbr", tuple(m.Delivery(T0 + 0.2 + i / 100, i) for i in range(980)),
                       started=T0 + 0.19)
    (u1,) = [f for f in a.analyse(scenario([]), RUN, {"u1": late}).flows if f.name == "u1"]
    assert u1.gaps == () and u1.window[0] == pytest.approx(0.19)


def test_resolve_time_forms():
    assert a.resolve_time(None, RUN, 7.0) == 7.0
    assert a.resolve_time(2.5, RUN, 0) == T0 + 2.5
    assert a.resolve_time("cut", RUN, 0) == T0 + 3.0
    assert a.resolve_time("cut.end+1.5", RUN, 0) == T0 + 7.5
    with pytest.raises(ValueError):
        a.resolve_time("other", RUN, 0)


def test_time_refs_with_negative_offsets_and_names_that_look_like_offsets():
    run = a.RunRecord(T0, T0 + 10, (a.FaultEvent("cut", "link-down", T0 + 3.0, T0 + 6.0),
                                    a.FaultEvent("link-1", "link-down", T0 + 8.0)))
    assert a.resolve_time("cut-0.5", run, 0) == T0 + 2.5
    assert a.resolve_time("cut.end-1", run, 0) == T0 + 5.0
    assert a.resolve_time("link-1", run, 0) == T0 + 8.0
    assert a.resolve_time("link-1+1", run, 0) == T0 + 9.0
