"""The data path's pure parts: packet rewriting on bytes, and the plan computed from contexts."""

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.shim import messages as m
from agents.shim.packet import PacketError, payload_header, translate_in, translate_out
from agents.shim.pairs import PairState
from agents.shim.plan import plan_for
from agents.shim.timers import TUNED

from .lab import Wire, make_engine

A = ipaddress.IPv6Address
ULID_A, ULID_B = A("2001:db8:a1:1::a"), A("2001:db8:b1:1::b")
LOC_A, LOC_B = A("2001:db8:a2:1::a"), A("2001:db8:b2:1::b")
TAG = 0x5EAD_BEEF_0123


def ipv6(src, dst, next_header=6, payload=b"\x12\x34" * 30, hop_limit=64):
    head = bytes([0x60, 0x0A, 0xBC, 0xDE]) + len(payload).to_bytes(2, "big") + bytes([next_header, hop_limit])
    return head + src.packed + dst.packed + payload


def lookup_only(tag, src, dst):
    """Host A's view: its context TAG with peer B, B's locator LOC_B verified."""
    return (ULID_A, ULID_B) if (tag, src, dst) == (TAG, LOC_B, LOC_A) else None


def test_translate_out_puts_locators_and_the_payload_header():
    original = ipv6(ULID_A, ULID_B)
    out = translate_out(original, LOC_A, LOC_B, TAG)
    assert len(out) == len(original) + 8
    assert out[6] == 140 and int.from_bytes(out[4:6], "big") == len(original) - 40 + 8
    assert out[8:24] == LOC_A.packed and out[24:40] == LOC_B.packed
    assert out[:4] == original[:4] and out[7] == original[7]  # traffic class, flow label, hop limit kept
    assert out[40:48] == m.encode(m.PayloadHeader(next_header=6, context_tag=TAG))
    assert out[42] & 0x80  # P bit
    assert out[48:] == original[40:]  # upper layer (and its checksum) untouched
    assert m.decode(out[40:48]) == m.PayloadHeader(6, TAG)


def test_receiver_restores_the_exact_original_packet():
    original = ipv6(ULID_B, ULID_A)  # B's TCP segment to A
    wire = translate_out(original, LOC_B, LOC_A, TAG)
    assert translate_in(wire, lookup_only) == original


@settings(max_examples=200)
@given(st.binary(max_size=300), st.integers(0, 255), st.integers(0, m.MAX_CONTEXT_TAG))
def test_round_trip_any_payload_and_tag(payload, next_header, tag):
    if next_header == 140:
        next_header = 59
    original = ipv6(ULID_B, ULID_A, next_header, payload)
    wire = translate_out(original, LOC_B, LOC_A, tag)
    assert translate_in(wire, lambda t, s, d: (ULID_A, ULID_B) if t == tag else None) == original


def test_packets_not_ours_are_left_alone():
    plain = ipv6(ULID_A, ULID_B)
    assert translate_in(plain, lookup_only) is None  # no shim header: the kernel's normal path
    unknown = translate_out(ipv6(ULID_B, ULID_A), LOC_B, LOC_A, TAG + 1)
    assert translate_in(unknown, lookup_only) is None  # another context's tag
    wrong_locator = translate_out(ipv6(ULID_B, ULID_A), A("2001:db8:ffff::1"), LOC_A, TAG)
    assert translate_in(wrong_locator, lookup_only) is None  # right tag, unverified source
    control = ipv6(LOC_A, LOC_B, 140, m.encode(m.Keepalive(receiver_context_tag=TAG)))
    assert payload_header(control) is None and translate_in(control, lookup_only) is None


@pytest.mark.parametrize("mangle", [
    lambda p: p[:44],  # truncated inside the shim header
    lambda p: p[:40],  # nothing after the IPv6 header
    lambda p: p[:41] + b"\x01" + p[42:],  # Hdr Ext Len 1: not a payload header
    lambda p: p[:4] + b"\xff\xff" + p[6:],  # payload length larger than the packet
    lambda p: p[:4] + b"\x00\x04" + p[6:],  # payload length smaller than the shim header
    lambda p: b"\x40" + p[1:],  # not IPv6
    lambda p: p[:40] + b"\x8c" + p[41:],  # a payload header inside another
])
def test_malformed_shim_packets_raise_only_packet_error(mangle):
    good = translate_out(ipv6(ULID_B, ULID_A), LOC_B, LOC_A, TAG)
    with pytest.raises(PacketError):
        translate_in(mangle(good), lookup_only)


@settings(max_examples=500)
@given(st.binary(max_size=120))
def test_fuzzed_bytes_never_raise_anything_else(noise):
    packet = ipv6(LOC_B, LOC_A, 140, b"")[:40] + noise
    packet = packet[:4] + len(noise).to_bytes(2, "big") + packet[6:]
    try:
        result = translate_in(packet, lookup_only)
    except PacketError:
        return
    assert result is None or result[8:40] == ULID_B.packed + ULID_A.packed


def test_translate_out_refuses_a_packet_that_already_has_the_header():
    with pytest.raises(PacketError):
        translate_out(ipv6(ULID_A, ULID_B, 140, bytes(16)), LOC_A, LOC_B, TAG)


# --- the plan: what the data path is told to do ------------------------------------------------


def established():
    a, b = make_engine("a", 1, TUNED), make_engine("b", 2, TUNED)
    wire = Wire(a, b)
    wire.deliver(a.connect(0.0, b.identity.ulids[0]))
    (ca,) = a.contexts.values()
    return a, b, ca


def test_context_on_its_ulid_pair_is_watched_not_translated():
    a, b, ca = established()
    plan = plan_for(a.contexts.values(), a.identity.locators)
    assert plan.translate == {}
    assert plan.watch == {(ca.local_ulid, ca.peer_ulid)}
    # packets are accepted from each verified peer locator to each of ours
    assert {(r, l) for (_t, r, l) in plan.restore} == {(r, l) for r in b.identity.locators for l in a.identity.locators}
    assert all(tag == ca.local_tag for tag, _r, _l in plan.restore)


def switch_to(ca, key, confirmed=True):
    for pair in ca.pairs.pairs.values():
        pair.preferred = False
    pair = ca.pairs.pairs[key]
    pair.preferred, pair.state = True, PairState.REACHABLE
    if confirmed:
        ca.confirmed.add(key)


def test_a_confirmed_verified_pair_is_translated_with_the_peer_tag():
    a, b, ca = established()
    key = (a.identity.locators[1], b.identity.locators[1])
    switch_to(ca, key)
    (translation,) = plan_for(a.contexts.values(), a.identity.locators).translate.values()
    assert (translation.local_locator, translation.peer_locator) == key
    assert translation.peer_tag == ca.peer_tag


def test_no_data_to_a_locator_without_a_probe_exchange():
    a, b, ca = established()
    switch_to(ca, (a.identity.locators[1], b.identity.locators[1]), confirmed=False)
    assert plan_for(a.contexts.values(), a.identity.locators).translate == {}


def test_no_data_to_a_locator_that_fails_verification():
    a, b, ca = established()
    victim = A("2001:db8:dead::1")  # a third party the peer claims as its locator
    ca.peer.locators = (*ca.peer.locators, victim)
    ca.peer.methods = (*ca.peer.methods, m.VERIFY_HBA)
    ca.pairs.sync(0.0, list(a.identity.locators), list(ca.peer.locators))
    switch_to(ca, (a.identity.locators[0], victim))
    plan = plan_for(a.contexts.values(), a.identity.locators)
    assert plan.translate == {}
    assert all(remote != victim for _t, remote, _l in plan.restore)


def test_reap_probe_exchange_records_the_confirmed_pair():
    a, b = make_engine("a", 1, TUNED), make_engine("b", 2, TUNED)
    wire = Wire(a, b)
    wire.deliver(a.connect(0.0, b.identity.ulids[0]))
    (ca,), (cb,) = a.contexts.values(), b.contexts.values()
    la, lb = a.identity.ulids[0], b.identity.ulids[0]
    wire.drop = lambda src, dst, msg: (src, dst) in ((la, lb), (lb, la))
    a.observe(1.0, la, lb, outgoing=True)
    wire.now = 1.0
    wire.run_until(1.0 + TUNED.send_timeout + 2.0)
    assert ca.pairs.preferred.key in ca.confirmed
    assert cb.pairs.preferred.key in cb.confirmed
    (tr,) = plan_for(a.contexts.values(), a.identity.locators).translate.values()
    assert (tr.local_locator, tr.peer_locator) == ca.pairs.preferred.key
    (tb,) = plan_for(b.contexts.values(), b.identity.locators).translate.values()
    assert (tb.local_locator, tb.peer_locator) == cb.pairs.preferred.key
