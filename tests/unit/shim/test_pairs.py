"""Fig. 21 of the thesis, transition by transition."""

import ipaddress

import pytest

from agents.shim.pairs import RELEASED_BY, TRANSITIONS, PairEvent as E, PairState as S, PairTable

A1, A2 = ipaddress.IPv6Address("2001:db8:a1::1"), ipaddress.IPv6Address("2001:db8:a2::1")
B1, B2 = ipaddress.IPv6Address("2001:db8:b1::1"), ipaddress.IPv6Address("2001:db8:b2::1")


def table():
    return PairTable.build(0.0, [A1, A2], [B1, B2], (A1, B1))


def test_communication_start_makes_the_ulid_pair_preferred_reachable_and_others_indeterminate():
    t = table()
    assert t.preferred.key == (A1, B1) and t.preferred.state is S.REACHABLE
    assert {p.state for k, p in t.pairs.items() if k != (A1, B1)} == {S.INDETERMINATE}
    assert len(t.pairs) == 4


# every row of the figure, on a non-preferred pair so re-election does not interfere
ROWS = [(state, event, target) for state, row in TRANSITIONS.items() for event, target in row.items()]


@pytest.mark.parametrize("state, event, target", ROWS, ids=[f"{s.value}-{e.value}" for s, e, _ in ROWS])
def test_each_transition_of_the_table(state, event, target):
    t = table()
    pair = t.pairs[(A2, B2)]
    pair.state = state
    if event in RELEASED_BY:
        pair.pins.add(RELEASED_BY[event])
    t.fire(5.0, pair, event)
    assert pair.state is target
    if target is not state:
        assert pair.since == 5.0


@pytest.mark.parametrize("state", list(S))
def test_events_not_in_the_figure_leave_the_state_alone(state):
    t = table()
    pair = t.pairs[(A2, B2)]
    pair.state = state
    for event in set(E) - set(TRANSITIONS[state]) - {E.LOCAL_UP, E.PREFIX_VALID}:
        assert t.fire(1.0, pair, event) == [] or pair.preferred
        assert pair.state is state


def test_preferred_reachable_to_indeterminate_when_idle_and_to_test_when_sending():
    t = table()
    t.fire(1.0, t.preferred, E.SILENT_IDLE)
    assert t.preferred.label() == "preferred indeterminate"
    t.fire(2.0, t.preferred, E.RX)
    assert t.preferred.label() == "preferred reachable"
    t.fire(3.0, t.preferred, E.SILENT_SENDING)
    assert t.preferred.label() == "preferred test"
    t.fire(4.0, t.preferred, E.TEST_OK)
    assert t.preferred.label() == "preferred reachable"


def test_failed_test_moves_preference_to_a_reachable_pair_first():
    t = table()
    t.fire(1.0, t.pairs[(A2, B2)], E.RX)  # A2-B2 known reachable
    old = t.preferred
    t.fire(2.0, old, E.SILENT_SENDING)
    transitions = t.fire(3.0, old, E.TEST_FAIL)
    assert old.state is S.UNREACHABLE and not old.preferred
    assert t.preferred.key == (A2, B2) and t.preferred.state is S.REACHABLE
    assert transitions[-1].after == "preferred reachable"


def test_without_reachable_pairs_an_indeterminate_pair_becomes_preferred():
    t = table()
    t.fire(1.0, t.preferred, E.SILENT_SENDING)
    t.fire(2.0, t.preferred, E.TEST_FAIL)
    assert t.preferred.state is S.INDETERMINATE


def test_no_preferred_and_test_ok_makes_the_tested_pair_preferred():
    t = PairTable.build(0.0, [A1], [B1, B2], (A1, B1))
    t.fire_where(1.0, E.LOCAL_DOWN, local=A1)  # every pair pinned: nothing to elect
    assert t.preferred is None
    t.pairs[(A1, B2)].pins.clear()
    t.pairs[(A1, B2)].state = S.TEST
    t.fire(2.0, t.pairs[(A1, B2)], E.TEST_OK)
    assert t.preferred.key == (A1, B2)


def test_unreachable_for_ti_becomes_indeterminate():
    t = table()
    pair = t.pairs[(A2, B2)]
    t.fire(10.0, pair, E.TEST_START)
    t.fire(11.0, pair, E.TEST_FAIL)
    assert t.expire_unreachable(20.0, hold=30.0) == [] and pair.state is S.UNREACHABLE
    t.expire_unreachable(41.0, hold=30.0)
    assert pair.state is S.INDETERMINATE


def test_interface_down_pins_pairs_until_repaired_and_moves_preference():
    t = table()
    t.fire_where(1.0, E.LOCAL_DOWN, local=A1)
    assert all(p.state is S.UNREACHABLE and p.pins == {"interface-down"} for k, p in t.pairs.items() if k[0] == A1)
    assert t.preferred.local == A2
    t.expire_unreachable(1000.0, hold=30.0)
    t.fire(1000.0, t.pairs[(A1, B1)], E.RX)
    assert t.pairs[(A1, B1)].state is S.UNREACHABLE  # pinned: neither Ti nor rx release it
    t.fire_where(1001.0, E.LOCAL_UP, local=A1)
    assert t.pairs[(A1, B1)].state is S.INDETERMINATE and not t.pairs[(A1, B1)].pins


def test_deprecated_prefix_and_interface_down_need_both_repairs():
    t = table()
    pair = t.pairs[(A2, B1)]
    t.fire(1.0, pair, E.LOCAL_DOWN)
    t.fire(2.0, pair, E.PREFIX_DEPRECATED)
    t.fire(3.0, pair, E.LOCAL_UP)
    assert pair.state is S.UNREACHABLE and pair.pins == {"prefix-deprecated"}
    t.fire(4.0, pair, E.PREFIX_VALID)
    assert pair.state is S.INDETERMINATE


def test_icmp_unreachable_moves_reachable_to_indeterminate():
    t = table()
    t.fire_where(1.0, E.ICMP_UNREACHABLE, local=A1, remote=B1)
    assert t.preferred.key == (A1, B1) and t.preferred.state is S.INDETERMINATE


def test_sync_adds_and_removes_pairs_for_locator_changes():
    t = table()
    t.sync(5.0, [A1], [B1, B2])
    assert set(t.pairs) == {(A1, B1), (A1, B2)} and t.preferred.key == (A1, B1)
    t.sync(6.0, [A1, A2], [B1])
    assert set(t.pairs) == {(A1, B1), (A2, B1)} and t.pairs[(A2, B1)].state is S.INDETERMINATE
