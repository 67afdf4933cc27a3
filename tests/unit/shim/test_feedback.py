"""Upper-layer feedback (TCP retransmission timeouts) and the fixes found by driving the lab by hand:
no context with ourselves, no pair left under test, no pair made reachable by a restored packet."""

import ipaddress
import struct

from agents.shim import messages as m
from agents.shim import ulp
from agents.shim.observer import observable
from agents.shim.pairs import PairState
from agents.shim.timers import TUNED

from .lab import events
from .test_reap import cut, established

A = ipaddress.IPv6Address


def test_tcp_timeout_on_a_healthy_pair_keeps_it():
    a, b, wire, ca, cb = established()
    la, lb = a.identity.ulids[0], b.identity.ulids[0]
    wire.now = 5.0
    wire.deliver(a.upper_layer_loss(5.0, la, lb))
    wire.run_until(6.0)
    assert events(a, "failure-suspected") and events(a, "pair-kept")
    assert not events(a, "pair-switched")
    assert ca.pairs.preferred.key == (la, lb) and ca.pairs.preferred.state is PairState.REACHABLE
    assert ca.reap.mode_name == "operational"
    assert not [p for p in ca.pairs.pairs.values() if p.state is PairState.TEST]


def test_tcp_timeout_on_a_dead_pair_switches_at_once():
    a, b, wire, ca, cb = established()
    la, lb = a.identity.ulids[0], b.identity.ulids[0]
    wire.drop = cut(("a1", "b1"), ("b1", "a1"))
    wire.now = 5.0
    wire.deliver(a.upper_layer_loss(5.0, la, lb))
    wire.run_until(5.1, step=0.01)
    switched = events(a, "pair-switched")
    assert switched and switched[0].time <= 5.0 + 0.02 and switched[0].detail["cause"] == "tcp-rto"
    assert ca.pairs.preferred.key != (la, lb)
    assert cb.pairs.preferred.key == (ca.pairs.preferred.remote, ca.pairs.preferred.local)


def test_tcp_timeout_while_exploring_or_without_context_is_ignored():
    a, b, wire, ca, cb = established()
    la, lb = a.identity.ulids[0], b.identity.ulids[0]
    assert a.upper_layer_loss(1.0, la, A("2001:db8:ff::1")) == []
    a.upper_layer_loss(1.0, la, lb)
    assert a.upper_layer_loss(1.001, la, lb) == []


def test_no_pair_stays_under_test_after_a_switch():
    a, b, wire, ca, cb = established()
    la, lb = a.identity.ulids[0], b.identity.ulids[0]
    wire.drop = cut(("a1", "b1"), ("b1", "a1"), ("a1", "b2"), ("b2", "a1"))  # ISP A1 gone
    wire.now = 5.0
    wire.deliver(a.icmp_unreachable(5.0, la, lb))
    wire.run_until(5.0 + 2 * TUNED.initial_probe_timeout)
    assert events(a, "pair-switched")
    states = {k: p.state for k, p in ca.pairs.pairs.items()}
    assert PairState.TEST not in states.values(), states
    assert states[(la, lb)] is PairState.UNREACHABLE


def test_outbound_only_pair_is_not_proven():
    """A reply that came back on another pair does not prove the pair the probe went out on."""
    a, b, wire, ca, cb = established()
    la, lb = a.identity.ulids[0], b.identity.ulids[0]
    wire.drop = cut(("b1", "a1"), ("b2", "a1"))  # a1 can send (say, leaked through ISP A2) but not receive
    wire.now = 5.0
    wire.deliver(a.icmp_unreachable(5.0, la, lb))
    wire.run_until(6.0)
    assert ca.pairs.preferred.local != la
    assert all(p.state is not PairState.REACHABLE for k, p in ca.pairs.pairs.items() if k[0] == la)


def test_restored_packet_does_not_make_a_pair_reachable():
    a, b, wire, ca, cb = established()
    la, lb = a.identity.ulids[0], b.identity.ulids[0]
    wire.drop = cut(("a1", "b1"), ("b1", "a1"))
    wire.now = 5.0
    wire.deliver(a.icmp_unreachable(5.0, la, lb))
    wire.run_until(6.0)
    assert ca.pairs.pairs[(la, lb)].state is PairState.UNREACHABLE
    a.observe(6.1, la, lb, outgoing=False, exact=False)  # what a sniffer sees after shim_in restored it
    assert ca.pairs.pairs[(la, lb)].state is PairState.UNREACHABLE
    assert ca.reap.last_rx == 6.1


def test_no_context_with_our_own_addresses():
    a, b, wire, ca, cb = established()
    la, la2 = a.identity.ulids
    assert a.observe(1.0, la, la2, outgoing=True) == [] and a.connect(1.0, la2, la) == []
    i1 = m.encode(m.I1(initiator_context_tag=7, initiator_nonce=9))
    assert a.receive(1.0, la2, la, i1) == []  # an I1 from ourselves gets no R1
    assert len(a.contexts) == 1


def _ip6(nh, src, dst, payload):
    return struct.pack("!IHBB", 0x60000000, len(payload), nh, 64) + A(src).packed + A(dst).packed + payload


def test_icmp_errors_and_neighbour_discovery_are_not_flows():
    unreachable = _ip6(58, "2001:db8:a101:1::1", "2001:db8:a101:1::2", bytes([1, 0, 0, 0]) + bytes(44))
    solicit = _ip6(58, "2001:db8:a101:1::1", "2001:db8:a101:1::2", bytes([135, 0, 0, 0]) + bytes(20))
    echo = _ip6(58, "2001:db8:a101:1::1", "2001:db8:b101:1::2", bytes([128, 0, 0, 0]) + bytes(8))
    shim = _ip6(140, "2001:db8:a101:1::1", "2001:db8:b101:1::2", bytes(8))
    assert [observable(p) for p in (unreachable, solicit, echo, shim)] == [False, False, True, False]


def _diag_message(cookie, src, dst, ca_state, backoff, total_retrans=0, last_ack_ms=0, rtt_us=1000):
    info = bytearray(bytes([1, ca_state, backoff, 0, backoff, 0, 0, 0]) + bytes(224))
    struct.pack_into("=I", info, 8, 30000)  # tcpi_rto
    struct.pack_into("=I", info, 56, last_ack_ms)  # tcpi_last_ack_recv
    struct.pack_into("=I", info, 68, rtt_us)  # tcpi_rtt
    struct.pack_into("=I", info, 100, total_retrans)  # tcpi_total_retrans
    attr = struct.pack("=HH", 4 + len(info), ulp.INET_DIAG_INFO) + bytes(info)
    body = (struct.pack("=BBBB", 10, 1, 1, 0) + struct.pack("!HH", 40000, 5001) + A(src).packed + A(dst).packed
            + struct.pack("=IQ", 0, cookie) + bytes(20) + attr)
    return struct.pack("=IHHII", 16 + len(body), ulp.SOCK_DIAG_BY_FAMILY, 2, 1, 0) + body


LOCAL, PEER, OTHER = "2001:db8:a101:1::2", "2001:db8:b101:1::2", "2001:db8:c101:1::2"


def _dumper():
    """dump(now, *sockets) -> [(kind, cookie, backoff, answered)] from a LossTracker fed parsed bytes."""
    done = struct.pack("=IHHII", 20, ulp.NLMSG_DONE, 2, 1, 0) + bytes(4)
    watched = {(A(LOCAL), A(PEER))}
    tracker = ulp.LossTracker()

    def dump(now, *sockets):
        states, finished = ulp.parse_dump(b"".join(_diag_message(*s) for s in sockets) + done)
        assert finished and all(s.rto_us == 30000 for s in states)
        return [(t.kind, t.state.cookie, t.state.backoff, t.answered) for t in tracker.update(states, watched, now)]

    return dump


def test_sock_diag_dump_parses_and_reports_each_timeout_of_a_quiet_connection_once():
    """A dead path: every timeout is reported one dump after it was seen, when no ACK followed it."""
    dump = _dumper()
    assert dump(1.0, (1, LOCAL, PEER, 0, 0), (2, LOCAL, OTHER, 4, 1, 0, 40)) == []  # the other is no context's
    assert dump(1.02, (1, LOCAL, PEER, 0, 0, 1, 40)) == []  # a tail-loss probe: does an ACK follow?
    assert dump(1.04, (1, LOCAL, PEER, 0, 0, 1, 60)) == [(ulp.TLP, 1, 0, False)]  # no
    assert dump(1.06, (1, LOCAL, PEER, 4, 1, 2, 80)) == []  # first RTO
    assert dump(1.08, (1, LOCAL, PEER, 4, 1, 3, 100)) == [(ulp.RTO, 1, 1, False)]  # (the same timeout still)
    assert dump(1.10, (1, LOCAL, PEER, 4, 2, 4, 120)) == []  # it timed out again
    assert dump(1.12, (1, LOCAL, PEER, 4, 2, 4, 140)) == [(ulp.RTO, 1, 2, False)]
    assert dump(1.14, (1, LOCAL, PEER, 3, 0, 5, 0)) == []  # recovery (fast retransmit) is not a timeout
    assert dump(1.16, (1, LOCAL, PEER, 0, 0, 5, 0)) == []  # back to open, nothing new
    assert ulp.dump_request(5)[4:6] == struct.pack("=H", ulp.SOCK_DIAG_BY_FAMILY)


def test_a_timeout_whose_ack_comes_back_is_no_failure_signal():
    """Random loss: TCP times out after 30 or 220 ms without an ACK (so the gap tells nothing), and the
    retransmission is ACKed within a round trip (REAP's rule: a failure is sending without receiving)."""
    dump = _dumper()
    assert dump(1.0, (1, LOCAL, PEER, 0, 0, 0, 0)) == []
    assert dump(1.02, (1, LOCAL, PEER, 0, 0, 1, 30)) == []  # a TLP, the last ACK 30 ms ago: wait
    assert dump(1.04, (1, LOCAL, PEER, 0, 0, 1, 1)) == [(ulp.TLP, 1, 0, True)]  # an ACK came after it
    assert dump(1.06, (1, LOCAL, PEER, 4, 1, 2, 220)) == []  # an RTO ...
    assert dump(1.08, (1, LOCAL, PEER, 0, 0, 2, 0)) == [(ulp.RTO, 1, 0, True)]  # ... answered too


def test_a_timeout_counts_once_the_connection_stays_quiet():
    """A silent cut right after an ACK: a TLP 8 ms after it, then an RTO; one dump later it counts, as an RTO."""
    dump = _dumper()
    assert dump(1.0, (1, LOCAL, PEER, 0, 0, 0, 0)) == []
    assert dump(1.02, (1, LOCAL, PEER, 0, 0, 1, 8)) == []
    assert dump(1.04, (1, LOCAL, PEER, 4, 1, 2, 28)) == [(ulp.RTO, 1, 1, False)]


def test_a_slow_path_waits_two_round_trips_for_the_ack():
    dump = _dumper()
    assert dump(1.0, (1, LOCAL, PEER, 0, 0, 0, 0, 30000)) == []
    assert dump(1.05, (1, LOCAL, PEER, 0, 0, 1, 50, 30000)) == []  # SRTT 30 ms: the ACK may take 60
    assert dump(1.07, (1, LOCAL, PEER, 0, 0, 1, 70, 30000)) == []
    assert dump(1.11, (1, LOCAL, PEER, 0, 0, 1, 110, 30000)) == [(ulp.TLP, 1, 0, False)]


def test_upper_layer_feedback_watches_contexts_that_sent_lately():
    a, b, wire, ca, cb = established()
    la, lb = a.identity.ulids[0], b.identity.ulids[0]
    ca.reap.last_tx = None
    assert a.ulid_pairs() == {(la, lb)} and a.ulid_pairs(sent_since=4.0) == set()
    a.observe(5.0, la, lb, outgoing=True)
    assert a.ulid_pairs(sent_since=4.0) == {(la, lb)} and a.ulid_pairs(sent_since=6.0) == set()


def test_tail_loss_probe_right_after_a_verification_is_not_asked_again():
    a, b, wire, ca, cb = established()
    la, lb = a.identity.ulids[0], b.identity.ulids[0]
    wire.now = 5.0
    wire.deliver(a.upper_layer_loss(5.0, la, lb, ulp.TLP))
    assert events(a, "pair-kept")
    assert a.upper_layer_loss(5.2, la, lb, ulp.TLP) == []
    assert a.upper_layer_loss(5.2, la, lb, ulp.RTO) != []


def test_pair_in_use_stays_translated_while_under_suspicion():
    """A suspicion must not stop the data path from using the pair (translation needs it reachable)."""
    a, b, wire, ca, cb = established()
    la, lb = a.identity.ulids[0], b.identity.ulids[0]
    wire.drop = lambda src, dst, msg: isinstance(msg, m.Probe)  # answers are slow to come
    a.upper_layer_loss(5.0, la, lb)
    assert ca.pairs.preferred.key == (la, lb) and ca.pairs.preferred.state is PairState.REACHABLE


def test_inbound_only_pair_is_not_made_reachable_by_data():
    """After ISP A1's router lost its link, packets to the A1 address still arrived: rx proves inbound only."""
    a, b, wire, ca, cb = established()
    la, lb = a.identity.ulids[0], b.identity.ulids[0]
    wire.drop = cut(("a1", "b1"), ("a1", "b2"))  # nothing leaves from A1; A1 still receives
    wire.now = 5.0
    wire.deliver(a.icmp_unreachable(5.0, la, lb))
    wire.run_until(6.0)
    a.observe(6.1, la, lb, outgoing=False)  # an untranslated packet really arrived on (A1, B1)
    assert ca.pairs.pairs[(la, lb)].state is not PairState.REACHABLE


def test_a_lost_probe_on_the_suspected_pair_does_not_switch():
    """Random loss takes one probe exchange on the pair in use: its twin keeps the pair."""
    a, b, wire, ca, cb = established()
    la, lb = a.identity.ulids[0], b.identity.ulids[0]
    dropped = []

    def first_probe_on_the_pair_in_use(src, dst, msg):
        if isinstance(msg, m.Probe) and (src, dst) == (la, lb) and not dropped:
            dropped.append(msg)
            return True
        return False

    wire.drop = first_probe_on_the_pair_in_use
    wire.now = 5.0
    wire.deliver(a.upper_layer_loss(5.0, la, lb, ulp.RTO))
    wire.run_until(6.0, step=0.01)
    assert dropped and events(a, "pair-kept") and not events(a, "pair-switched")
    assert ca.pairs.preferred.key == (la, lb)


def test_a_known_connection_is_asked_for_by_its_socket_id():
    """Between dumps (a walk of the machine-wide hash) each connection is looked up exactly."""
    states, _ = ulp.parse_dump(_diag_message(7, LOCAL, PEER, 0, 0))
    sockid = states[0].sockid
    assert len(sockid) == 48 and sockid[4:20] == A(LOCAL).packed and struct.unpack_from("=Q", sockid, 40)[0] == 7
    exact, dump = ulp.dump_request(3, sockid), ulp.dump_request(3)
    flags = lambda req: struct.unpack_from("=H", req, 6)[0]  # noqa: E731
    assert flags(dump) & ulp.NLM_F_DUMP and not flags(exact) & ulp.NLM_F_DUMP
    assert exact[-48:] == sockid and len(exact) == len(dump)
