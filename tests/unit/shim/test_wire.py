"""RFC 5533/5534 wire formats: every message round-trips, fuzz never escapes ShimDecodeError."""

import ipaddress

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.shim import messages as m
from agents.shim.wire import ShimDecodeError, ShimEncodeError, internet_checksum

from .strategies import control_messages, options

A = ipaddress.IPv6Address("2001:db8:a::1")
B = ipaddress.IPv6Address("2001:db8:b::1")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(control_messages)
def test_every_control_message_round_trips(msg):
    data = m.encode(msg)
    assert len(data) % 8 == 0 and data[1] == len(data) // 8 - 1
    assert data[0] == 59 and data[2] == type(msg).TYPE and data[2] & 0x80 == 0
    assert internet_checksum(data) == 0
    assert m.decode(data) == msg


@given(options)
def test_options_are_padded_to_eight_octets(option):
    assert len(m.encode_option(option)) % 8 == 0


@given(st.integers(0, 255), st.integers(0, m.MAX_CONTEXT_TAG))
def test_payload_header_round_trips(nh, tag):
    data = m.encode(m.PayloadHeader(nh, tag))
    assert len(data) == 8 and data[2] & 0x80
    assert m.decode(data) == m.PayloadHeader(nh, tag)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300), st.booleans())
def test_fuzzed_bytes_raise_only_shim_decode_error(data, check):
    try:
        m.decode(data, verify_checksum=check)
    except ShimDecodeError:
        pass


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(control_messages, st.data())
def test_mutated_valid_messages_raise_only_shim_decode_error(msg, data):
    raw = bytearray(m.encode(msg))
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    try:
        m.decode(bytes(raw), verify_checksum=False)
    except ShimDecodeError:
        pass


def test_i1_layout_by_hand():
    data = m.encode(m.I1(initiator_context_tag=0x123456789ABC, initiator_nonce=0xDEADBEEF))
    assert data.hex() == "3b01" + "0100" + data[4:6].hex() + "123456789abc" + "deadbeef"


def test_locator_list_pads_methods_so_locators_start_on_eight_octets():
    opt = m.LocatorList(generation=7, methods=(m.VERIFY_HBA, m.VERIFY_HBA), locators=(A, B))
    raw = m.encode_option(opt)
    # 4 header + 4 generation + 1 count + 2 methods + 5 pad = 16, then locators
    assert raw[8:16] == bytes([2, 1, 1, 0, 0, 0, 0, 0]) and raw[16:32] == A.packed
    assert int.from_bytes(raw[2:4], "big") == len(raw) - 4


def test_probe_counts_and_state_bits():
    report = m.ProbeReport(source=A, destination=B, nonce=1, data=2)
    msg = m.Probe(receiver_context_tag=5, state=m.REAP_EXPLORING, sent=(report, report), received=(report,))
    raw = m.encode(msg)
    assert raw[12] == 0x12 and raw[13] == 0x40  # Precvd=1, Psent=2; Sta=1 in the top two bits
    assert len(raw) == 16 + 3 * 40


def test_bad_checksum_and_hip_bit_and_unknown_type_are_decode_errors():
    raw = bytearray(m.encode(m.Keepalive(receiver_context_tag=1)))
    raw[10] ^= 1
    with pytest.raises(ShimDecodeError, match="checksum"):
        m.decode(bytes(raw))
    raw = bytearray(m.encode(m.Keepalive(receiver_context_tag=1)))
    raw[3] |= 1
    with pytest.raises(ShimDecodeError, match="HIP"):
        m.decode(bytes(raw))
    raw = bytearray(m.encode(m.Keepalive(receiver_context_tag=1)))
    raw[2] = 99
    with pytest.raises(ShimDecodeError, match="unknown message type"):
        m.decode(bytes(raw), verify_checksum=False)


def test_encoding_refuses_values_that_do_not_fit():
    with pytest.raises(ShimEncodeError):
        m.encode(m.I1(initiator_context_tag=1 << 47, initiator_nonce=0))
    with pytest.raises(ShimEncodeError):
        m.encode_option(m.LocatorList(generation=0, methods=(1,), locators=(A, B)))
    report = m.ProbeReport(source=A, destination=B, nonce=0, data=0)
    with pytest.raises(ShimEncodeError):
        m.encode(m.Probe(receiver_context_tag=0, state=0, sent=(report,) * 16, received=()))


def test_scapy_sees_protocol_140_as_opaque_payload_we_can_parse():
    from scapy.layers.inet6 import IPv6
    from scapy.packet import Raw

    body = m.encode(m.R2(responder_context_tag=9, initiator_nonce=3))
    pkt = IPv6(bytes(IPv6(src=str(A), dst=str(B), nh=140) / Raw(body)))
    assert pkt.nh == 140 and m.decode(bytes(pkt.payload)) == m.R2(responder_context_tag=9, initiator_nonce=3)
