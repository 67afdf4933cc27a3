"""The observer's socket filter: the kernel passes only packets the engine needs.

A bulk transfer between a context's ULIDs used to reach the daemon packet by packet (one Python
``recvfrom`` per segment and ACK: 1.4-3.5 CPU-s per 10 s transfer on each end).  With a data path
counting the context's packets, none of them may reach the observer; without one they all must
(REAP has no other input); a flow without a context always must (the context policy).
"""

import ipaddress

import pytest

from agents.shim import sockfilter as sf
from agents.shim.context import ContextState
from agents.shim.observer import observable
from agents.shim.policy import ContextPolicy

from . import cbpf
from .lab import Wire, make_engine

A = ipaddress.IPv6Address


def ipv6(src, dst, nh=6, payload=b"\x00" * 20):
    return bytes([0x60, 0, 0, 0]) + len(payload).to_bytes(2, "big") + bytes([nh, 64]) + A(src).packed + A(dst).packed + payload


def passes(exclusions, packet):
    return cbpf.run(sf.program(exclusions), packet) > 0


def established():
    a, b = make_engine("a", 1), make_engine("b", 2)
    wire = Wire(a, b)
    wire.deliver(a.connect(0.0, b.identity.ulids[0]))
    return a, b, wire


def exclusions(engine, counted):
    return sf.Exclusions(*engine.unobserved(counted))


def test_a_context_counted_by_the_data_path_reaches_the_observer_in_neither_direction():
    a, b, _ = established()
    la, lb = str(a.identity.ulids[0]), str(b.identity.ulids[0])
    ex = exclusions(a, counted=True)
    assert ex.pairs == {(a.identity.ulids[0], b.identity.ulids[0])}
    assert not passes(ex, ipv6(la, lb)) and not passes(ex, ipv6(lb, la, payload=b"\x01" * 32))
    # another locator pair of the same hosts, a third host, a host without a context: still seen
    other = str(b.identity.locators[1])
    assert passes(ex, ipv6(la, other)) and passes(ex, ipv6(other, la))
    assert passes(ex, ipv6(la, "2001:db8:c1:1::9")) and passes(ex, ipv6(lb, "2001:db8:c1:1::9"))
    assert cbpf.run(sf.program(ex), ipv6(la, other)) == sf.SNAPLEN


def test_without_a_data_path_the_observer_is_reaps_input_and_sees_every_packet():
    a, b, _ = established()
    la, lb = str(a.identity.ulids[0]), str(b.identity.ulids[0])
    ex = exclusions(a, counted=False)
    assert ex == sf.Exclusions()
    assert passes(ex, ipv6(la, lb)) and passes(ex, ipv6(lb, la))


def test_a_context_being_set_up_and_a_peer_without_shim_are_not_observed():
    a, b = make_engine("a", 1), make_engine("b", 2)
    peer = b.identity.ulids[0]
    a.connect(0.0, peer)  # I1 sent, no answer yet
    assert exclusions(a, counted=False).pairs == {(a.identity.ulids[0], peer)}
    a.icmp_parameter_problem(1.0, peer)  # its kernel has no shim: remembered for the hold-down
    ex = exclusions(a, counted=False)
    assert a.contexts == {} and ex.peers == {peer}
    for local in (a.identity.ulids[0], a.identity.locators[1]):
        assert not passes(ex, ipv6(str(local), str(peer))) and not passes(ex, ipv6(str(peer), str(local)))
    a.tick(1e6)  # hold-down over: its flows are seen again, so the policy can retry
    assert exclusions(a, counted=False) == sf.Exclusions()


def test_a_policy_that_counts_packets_sees_every_packet_of_a_flow_without_context():
    a = make_engine("a", 1, policy=ContextPolicy.parse("packets:5"))
    peer = "2001:db8:b1:1::77"
    ex = exclusions(a, counted=True)
    packet = ipv6(str(a.identity.ulids[0]), peer)
    assert all(passes(ex, packet) for _ in range(5))
    for _ in range(5):
        a.observe(0.0, a.identity.ulids[0], A(peer), True)
    assert [c.state for c in a.contexts.values()] == [ContextState.I1_SENT]


@pytest.mark.parametrize("nh, first, seen", [
    (140, 0, False),  # shim control and payload: the raw socket's
    (58, 1, False), (58, 3, False),  # ICMPv6 unreachable, time exceeded
    (58, 135, False), (58, 136, False), (58, 133, False),  # Neighbour Discovery
    (58, 128, True), (58, 129, True),  # echo: a flow
    (6, 0, True), (17, 0, True),
])
def test_the_filter_drops_what_observable_ignores(nh, first, seen):
    packet = ipv6("2001:db8:a1:1::1", "2001:db8:b1:1::1", nh, bytes([first]) + b"\x00" * 7)
    assert passes(sf.Exclusions(), packet) is seen is observable(packet)


def test_multicast_and_link_local_never_reach_the_observer():
    assert not passes(sf.Exclusions(), ipv6("2001:db8:a1:1::1", "ff02::1:ff00:1", 17))
    assert not passes(sf.Exclusions(), ipv6("fe80::1", "2001:db8:a1:1::1", 17))
    assert not passes(sf.Exclusions(), ipv6("2001:db8:a1:1::1", "fe80::2", 17))
    assert not passes(sf.Exclusions(), b"\x60" + b"\x00" * 10)  # truncated


def test_more_exclusions_than_fit_are_passed_never_dropped_wrongly():
    local = A("2001:db8:a1:1::1")
    pairs = frozenset((local, A(f"2001:db8:b1:1::{i:x}")) for i in range(1, 400))
    insns = sf.program(sf.Exclusions(pairs))
    assert len(insns) <= sf.BPF_MAXINSNS
    fitted = (sf.BPF_MAXINSNS - len(sf.program(sf.Exclusions()))) // sf.PAIR_BLOCK
    dropped = [p for p in sorted(pairs) if not passes(sf.Exclusions(pairs), ipv6(str(p[0]), str(p[1])))]
    assert len(dropped) == fitted and dropped == sorted(pairs)[:fitted]


def test_the_program_encodes_as_struct_sock_filter():
    insns = sf.program(sf.Exclusions())
    code = sf.encode(insns)
    assert len(code) == 8 * len(insns) and code[-8:] == bytes([6, 0, 0, 0]) + sf.SNAPLEN.to_bytes(4, "little")
