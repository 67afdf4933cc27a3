"""Gap detection, failover time, loss/reordering and connection outcomes on synthetic timelines."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from testbed.scenario import measures as m


def ticks(start: float, end: float, step: float) -> list[float]:
    n = int(round((end - start) / step))
    return [start + i * step for i in range(n)]


def test_no_gap_in_a_steady_stream():
    assert m.find_gaps(ticks(0, 5, 0.01), 0.03, (0.0, 5.0)) == []


def test_interior_gap_has_exact_start_and_end():
    times = ticks(0, 2, 0.01) + ticks(2.7, 5, 0.01)
    (gap,) = m.find_gaps(times, 0.03, (0.0, 5.0))
    assert gap.start == pytest.approx(1.99)
    assert gap.end == pytest.approx(2.7)
    assert gap.duration == pytest.approx(0.71)
    assert not gap.open


def test_flow_that_never_recovers_has_an_open_gap_to_the_window_end():
    (gap,) = m.find_gaps(ticks(0, 2, 0.01), 0.03, (0.0, 6.0))
    assert gap.open and gap.start == pytest.approx(1.99) and gap.end == 6.0


def test_leading_gap_and_empty_flow():
    (lead,) = m.find_gaps(ticks(1, 3, 0.01), 0.03, (0.0, 3.0))
    assert (lead.start, lead.end, lead.open) == (0.0, 1.0, False)
    (everything,) = m.find_gaps([], 0.03, (0.0, 3.0))
    assert everything.open and everything.duration == 3.0


def test_deliveries_outside_the_window_are_ignored():
    times = ticks(0, 10, 0.01)
    assert m.find_gaps(times, 0.03, (2.0, 4.0)) == []


@given(st.lists(st.floats(0, 100, allow_nan=False), max_size=60), st.floats(0.01, 5))
def test_gaps_are_disjoint_ordered_and_above_threshold(times, threshold):
    gaps = m.find_gaps(times, threshold, (0.0, 100.0))
    assert all(g.duration > threshold for g in gaps)
    assert all(a.end <= b.start for a, b in zip(gaps, gaps[1:]))
    assert sum(g.open for g in gaps) <= 1 and (not gaps or not any(g.open for g in gaps[:-1]))


def test_failover_is_fault_instant_to_first_delivery_after_the_gap():
    times = ticks(0, 3.0, 0.01) + ticks(3.85, 8, 0.01)
    gaps = m.find_gaps(times, 0.03, (0.0, 8.0))
    f = m.failover("cut", 3.0, gaps, horizon=8.0)
    assert f.seconds == pytest.approx(0.85)
    assert f.gap is not None and f.gap.start == pytest.approx(2.99)


def test_failover_of_an_unaffected_flow_is_zero_and_of_a_dead_flow_is_none():
    steady = m.find_gaps(ticks(0, 8, 0.01), 0.03, (0.0, 8.0))
    assert m.failover("cut", 3.0, steady, 8.0).seconds == 0.0
    dead = m.find_gaps(ticks(0, 3, 0.01), 0.03, (0.0, 8.0))
    assert m.failover("cut", 3.0, dead, 8.0).seconds is None


def test_failover_ignores_gaps_after_the_next_fault():
    times = ticks(0, 6, 0.01) + ticks(6.5, 8, 0.01)  # the only gap starts after the next fault at 5 s
    gaps = m.find_gaps(times, 0.03, (0.0, 8.0))
    assert m.failover("first", 3.0, gaps, horizon=5.0).seconds == 0.0
    assert m.failover("second", 5.0, gaps, horizon=8.0).seconds == pytest.approx(1.5)


def test_send_clock_interpolates_and_extrapolates():
    clock = m.SendClock([(0, 100.0), (100, 101.0), (200, 102.0)])
    assert clock(50) == pytest.approx(100.5)
    assert clock(300) == pytest.approx(103.0)
    assert clock(100) == 101.0
    assert m.SendClock([])(5) is None


def udp_trace(received: list[int], sent: int = 100, rate: float = 100.0) -> m.FlowTrace:
    deliveries = tuple(m.Delivery(10 + i * 0.001, seq) for i, seq in enumerate(received))
    return m.FlowTrace("u", "udpcbr", deliveries, (0, sent), ((0, 0.0), (sent, sent / rate)))


def test_loss_counts_sequence_numbers_never_received():
    stats = m.loss_stats(udp_trace([s for s in range(100) if not 40 <= s < 60]), (0.0, 1.0))
    assert (stats.sent, stats.received, stats.lost) == (100, 80, 20)
    assert stats.loss == pytest.approx(0.2)


def test_loss_within_a_window_uses_send_times():
    stats = m.loss_stats(udp_trace([s for s in range(100) if not 40 <= s < 60]), (0.5, 1.0))
    assert (stats.sent, stats.lost) == (50, 10)


def test_reordering_and_duplicates():
    stats = m.loss_stats(udp_trace([0, 1, 3, 2, 4, 4, 5], sent=6), (0.0, 1.0))
    assert stats.reordered == 1 and stats.duplicates == 1 and stats.lost == 0
    assert stats.reordering == pytest.approx(1 / 6)


def test_no_sequence_data_means_no_loss_figure():
    assert m.loss_stats(m.FlowTrace("p", "probe"), (0.0, 1.0)) is None


def tcp_trace(conn_of: list[tuple[float, float, int]], connections: tuple[m.Connection, ...]) -> m.FlowTrace:
    deliveries = tuple(m.Delivery(t, i, conn=c) for a, b, c in conn_of for i, t in enumerate(ticks(a, b, 0.01)))
    return m.FlowTrace("t", "tcpseq", deliveries, connections=connections)


def test_connection_kept_when_same_connection_carries_on():
    trace = tcp_trace([(0, 2, 1), (2.5, 5, 1)], (m.Connection(1, 0.0),))
    assert m.connection_kept(trace, (1.0, 5.0), 0.03)


def test_connection_not_kept_when_broken_and_replaced():
    trace = tcp_trace([(0, 2, 1), (3, 5, 2)], (m.Connection(1, 0.0, 2.2, "ECONNRESET"), m.Connection(2, 2.9)))
    assert not m.connection_kept(trace, (1.0, 5.0), 0.03)
    assert [c.conn for c in m.broken_in(trace, (1.0, 5.0))] == [1]


def test_stuck_connection_is_not_kept_even_without_an_error():
    trace = tcp_trace([(0, 2, 1)], (m.Connection(1, 0.0),))
    assert not m.connection_kept(trace, (1.0, 5.0), 0.03)


def test_attempt_ratio_and_latency():
    attempts = (m.Attempt(0.0, True, 2.0), m.Attempt(1.0, False, None, "timeout"), m.Attempt(2.0, True, 4.0))
    trace = m.FlowTrace("p", "probe", attempts=attempts)
    assert m.success_ratio(m.attempts_in(trace, (0.0, 3.0))) == pytest.approx(2 / 3)
    assert m.median_latency(m.attempts_in(trace, (0.0, 3.0))) == 3.0
    assert m.success_ratio(m.attempts_in(trace, (5.0, 6.0))) is None


def test_binned_counts():
    assert m.binned_counts([0.05, 0.06, 0.15, 0.35, 9.0], 0.0, 0.4, 0.1) == [2, 1, 0, 1]


def test_failover_ignores_a_jitter_gap_long_after_the_fault():
    """The fault's interruption stayed under the gap threshold; a pause 2 s later is not its failover."""
    late = [m.Gap(5.0, 5.4)]
    assert m.failover("cut", 3.0, late, horizon=10.0).seconds == 0.0
    assert m.failover("cut", 3.0, [m.Gap(3.5, 3.7)], horizon=10.0).seconds == pytest.approx(0.7)


def test_a_stall_across_the_window_end_that_goes_on_on_the_same_connection_is_kept():
    """A receiver starved at the end of the scenario reads the last records a little late: not a stop."""
    trace = tcp_trace([(0, 4.8, 1), (5.15, 5.3, 1)], (m.Connection(1, 0.0),))
    assert m.connection_kept(trace, (1.0, 5.0), 0.03)


def test_delivery_resuming_long_after_the_window_end_is_not_kept():
    trace = tcp_trace([(0, 4.0, 1), (6.5, 7.0, 1)], (m.Connection(1, 0.0),))
    assert not m.connection_kept(trace, (1.0, 5.0), 0.03)
    other = tcp_trace([(0, 4.8, 1), (5.1, 5.3, 2)], (m.Connection(1, 0.0), m.Connection(2, 4.9)))
    assert not m.connection_kept(other, (1.0, 5.0), 0.03)  # what came after the end came on another one
