"""Codecs: I2P primitives and every I2CP message round-trip; router-side garbage only ever raises
DecodeError."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.balancer.keys import DestinationKeys
from agents.balancer.messages import (
    MESSAGE_TYPES,
    CreateLeaseSet2,
    CreateSession,
    DestroySession,
    FrameDecoder,
    GetDate,
    HostLookup,
    HostReply,
    MessagePayload,
    MessageStatus,
    ReconfigureSession,
    RequestVariableLeaseSet,
    SendMessage,
    SessionStatus,
    SetDate,
    UnknownMessage,
    decode_message,
)
from agents.balancer.structures import Lease, Lease2, LeaseSet2
from agents.balancer.wire import DecodeError, I2PMapping, Reader

KEYS = DestinationKeys.generate()
DEST = KEYS.destination

u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
u64 = st.integers(0, 2**64 - 1)
text = st.text(max_size=40).filter(lambda s: len(s.encode()) <= 255)
mapping = st.dictionaries(text, text, max_size=6)
leases = st.lists(st.builds(Lease, st.binary(min_size=32, max_size=32), u32, u64), max_size=16).map(tuple)
leases2 = st.lists(st.builds(Lease2, st.binary(min_size=32, max_size=32), u32, u32), max_size=16).map(tuple)
lease_sets = st.builds(lambda ls, pub: KEYS.lease_set(ls, pub), leases2, u32)

messages = st.one_of(
    st.builds(lambda o, d: CreateSession(KEYS.session_config(o, d)), mapping, u64),
    st.builds(lambda s, o, d: ReconfigureSession(s, KEYS.session_config(o, d)), u16, mapping, u64),
    st.builds(DestroySession, u16),
    st.builds(SendMessage, u16, st.just(DEST), st.binary(max_size=300), u32),
    st.builds(SessionStatus, u16, st.integers(0, 255)),
    st.builds(MessageStatus, u16, u32, st.integers(0, 255), u32, u32),
    st.builds(MessagePayload, u16, u32, st.binary(max_size=300)),
    st.builds(GetDate, text),
    st.builds(SetDate, u64, text),
    st.builds(RequestVariableLeaseSet, u16, leases),
    st.builds(HostLookup, u16, u32, u32, st.just(0), st.binary(min_size=32, max_size=32)),
    st.builds(HostLookup, u16, u32, u32, st.just(1), text),
    st.builds(HostReply, u16, u32, st.just(0), st.just(DEST)),
    st.builds(HostReply, u16, u32, st.integers(1, 255), st.none()),
    st.builds(lambda s, ls: CreateLeaseSet2(s, 3, ls, KEYS.private_key_sections()), u16, lease_sets),
)


@given(mapping)
def test_mapping_round_trip_is_sorted(value: dict[str, str]) -> None:
    out = bytearray()
    I2PMapping().encode(value, out, {})
    assert I2PMapping().decode(Reader(bytes(out)), {}) == value
    # sorted: encoding a differently ordered dict gives the same bytes
    again = bytearray()
    I2PMapping().encode(dict(reversed(list(value.items()))), again, {})
    assert again == out


def test_mapping_wire_format_is_key_equals_value_semicolon() -> None:
    out = bytearray()
    I2PMapping().encode({"b": "2", "a": "1"}, out, {})
    assert bytes(out) == b"\x00\x0c\x01a=\x011;\x01b=\x012;"


@pytest.mark.parametrize(
    "raw",
    [b"\x00\x05\x01a\x011;", b"\x00\x06\x01a=\x011:", b"\x00\x0c\x01a=\x011;\x01a=\x012;", b"\x00\x09\x01a=\x01"],
)
def test_mapping_rejects_malformed(raw: bytes) -> None:
    with pytest.raises(DecodeError):
        I2PMapping().decode(Reader(raw), {})


@settings(max_examples=150)
@given(messages)
def test_every_message_round_trips_through_framing(message: object) -> None:
    frame = message.frame()  # type: ignore[attr-defined]
    assert FrameDecoder().feed(frame) == [message]


@settings(max_examples=60)
@given(st.lists(messages, min_size=1, max_size=4), st.integers(1, 50))
def test_stream_split_anywhere_yields_same_messages(batch: list[object], step: int) -> None:
    stream = b"".join(m.frame() for m in batch)  # type: ignore[attr-defined]
    decoder = FrameDecoder()
    got: list[object] = []
    for i in range(0, len(stream), step):
        got += decoder.feed(stream[i : i + step])
    assert got == batch


@settings(max_examples=300)
@given(st.sampled_from(sorted(MESSAGE_TYPES)), st.binary(max_size=600))
def test_garbage_bodies_raise_only_decode_error(msg_type: int, body: bytes) -> None:
    try:
        decode_message(msg_type, body)
    except DecodeError:
        pass


@settings(max_examples=200)
@given(messages, st.data())
def test_truncated_or_extended_bodies_are_rejected(message: object, data: st.DataObject) -> None:
    body = message.to_bytes()  # type: ignore[attr-defined]
    cut = data.draw(st.integers(0, len(body) - 1)) if body else 0
    with pytest.raises(DecodeError):
        decode_message(message.TYPE, body[:cut] if body else b"")  # type: ignore[attr-defined]
    with pytest.raises(DecodeError):
        decode_message(message.TYPE, body + b"\x00")  # type: ignore[attr-defined]


def test_unknown_types_pass_through() -> None:
    frame = (3).to_bytes(4, "big") + bytes([23]) + b"abc"  # BandwidthLimits-like
    assert FrameDecoder().feed(frame) == [UnknownMessage(23, b"abc")]


def test_oversized_frame_and_bad_protocol_byte() -> None:
    with pytest.raises(DecodeError):
        FrameDecoder().feed((0x10000).to_bytes(4, "big") + b"\x14")
    with pytest.raises(DecodeError):
        FrameDecoder(expect_protocol_byte=True).feed(b"\x2b")


def test_request_variable_leaseset_with_17_leases_is_refused() -> None:
    lease = Lease(b"g" * 32, 1, 2).to_bytes()
    with pytest.raises(DecodeError):
        RequestVariableLeaseSet.from_bytes(b"\x00\x01" + bytes([17]) + lease * 17)


def test_i2pd_request_variable_leaseset_layout() -> None:
    """Bytes laid out as i2pd's PostCreateNewLeaseSet sends them: sid, count, 44-byte leases."""
    gw = bytes(range(32))
    body = (0x1234).to_bytes(2, "big") + b"\x01" + gw + (7).to_bytes(4, "big") + (1_700_000_600_000).to_bytes(8, "big")
    msg = RequestVariableLeaseSet.from_bytes(body)
    assert msg == RequestVariableLeaseSet(0x1234, (Lease(gw, 7, 1_700_000_600_000),))


def test_leaseset2_rejects_offline_keys_flag() -> None:
    ls = KEYS.lease_set((), 100, flags=1)
    with pytest.raises(DecodeError):
        LeaseSet2.from_bytes(ls.to_bytes())
