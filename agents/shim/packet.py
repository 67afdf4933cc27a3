"""The data path's packet rewriting, pure functions on bytes (RFC 5533 sections 9-10).

``translate_out`` is what a sender does once a context left its ULID pair: locators in the
IPv6 header, the 8-octet payload extension header (``messages.PayloadHeader``, declared in
the wire module) after it, carrying the peer's context tag.  ``translate_in`` is the
receiver: find the context from (tag, source locator, destination locator), strip the
header, put the ULIDs back.  Upper-layer checksums are left alone on purpose: they cover
the ULIDs, which is what the receiving TCP sees again.  The NFQUEUE data path runs these;
the eBPF programs (``bpf/shim_tc.c``) do the same and the tests hold them to it.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from typing import Callable

from . import messages as m
from .wire import SHIM6_PROTOCOL, ShimDecodeError

Address = ipaddress.IPv6Address
IPV6_HLEN = 40
SHIM_HLEN = 8


class PacketError(ValueError):
    """Bytes that are not an IPv6 packet this data path can handle (never anything else)."""


@dataclass(frozen=True)
class Ipv6Header:
    next_header: int
    payload_length: int
    src: Address
    dst: Address


def parse_ipv6(packet: bytes) -> Ipv6Header:
    if len(packet) < IPV6_HLEN or packet[0] >> 4 != 6:
        raise PacketError("not an IPv6 packet")
    return Ipv6Header(packet[6], int.from_bytes(packet[4:6], "big"), Address(packet[8:24]), Address(packet[24:40]))


def with_addresses(packet: bytes, src: Address, dst: Address, next_header: int, payload_length: int) -> bytes:
    """The fixed header with new addresses, next header and payload length; rest unchanged."""
    return packet[:4] + payload_length.to_bytes(2, "big") + bytes([next_header]) + packet[7:8] + src.packed + dst.packed


def translate_out(packet: bytes, src: Address, dst: Address, peer_tag: int) -> bytes:
    """ULIDs -> locators, and the payload extension header with the peer's context tag."""
    head = parse_ipv6(packet)
    if head.next_header == SHIM6_PROTOCOL:
        raise PacketError("already carries a Shim6 header")
    if head.payload_length + SHIM_HLEN > 0xFFFF:
        raise PacketError("no room for the payload extension header")
    shim = m.encode(m.PayloadHeader(next_header=head.next_header, context_tag=peer_tag))
    fixed = with_addresses(packet, src, dst, SHIM6_PROTOCOL, head.payload_length + SHIM_HLEN)
    return fixed + shim + packet[IPV6_HLEN:]


Lookup = Callable[[int, Address, Address], "tuple[Address, Address] | None"]


def payload_header(packet: bytes) -> m.PayloadHeader | None:
    """The payload extension header of a protocol-140 packet; None for control messages.

    Raises PacketError for anything malformed (truncated, wrong length, bad payload length).
    """
    head = parse_ipv6(packet)
    if head.next_header != SHIM6_PROTOCOL:
        return None
    if len(packet) < IPV6_HLEN + SHIM_HLEN or head.payload_length < SHIM_HLEN:
        raise PacketError("truncated Shim6 header")
    if not packet[IPV6_HLEN + 2] & 0x80:
        return None
    if len(packet) < IPV6_HLEN + head.payload_length:
        raise PacketError("shorter than its payload length")
    try:
        shim = m.decode(packet[IPV6_HLEN:IPV6_HLEN + SHIM_HLEN])
    except ShimDecodeError as exc:
        raise PacketError(str(exc)) from exc
    if shim.next_header == SHIM6_PROTOCOL:
        raise PacketError("a payload extension header inside another")
    return shim


def translate_in(packet: bytes, lookup: Lookup) -> bytes | None:
    """Strip the payload extension header and restore the ULIDs.

    ``lookup(tag, source locator, destination locator)`` gives (local ULID, peer ULID) for a
    known context and verified locators.  Returns None when the packet is not ours to
    rewrite (no payload header, unknown context); raises PacketError when it is malformed.
    """
    shim = payload_header(packet)
    if shim is None:
        return None
    head = parse_ipv6(packet)
    ulids = lookup(shim.context_tag, head.src, head.dst)
    if ulids is None:
        return None
    local, peer = ulids
    fixed = with_addresses(packet, peer, local, shim.next_header, head.payload_length - SHIM_HLEN)
    return fixed + packet[IPV6_HLEN + SHIM_HLEN:]


ICMP6_MIN_MTU = 1280


def icmp_error(kind: int, code: int, pointer: int, src: Address, dst: Address, payload: bytes,
               hop_limit: int = 64) -> bytes:
    """An ICMPv6 error's body (checksum left 0: a raw ICMPv6 socket fills it in) quoting the invoking
    packet: an IPv6 header rebuilt from its addresses (a raw protocol-140 socket hands over only what
    follows it) and as much of ``payload`` as fits in the minimum MTU (RFC 4443 section 2.4 (c))."""
    header = struct.pack("!IHBB", 0x60000000, len(payload), SHIM6_PROTOCOL, hop_limit) + src.packed + dst.packed
    quoted = (header + payload)[: ICMP6_MIN_MTU - IPV6_HLEN - 8]
    return struct.pack("!BBHI", kind, code, 0, pointer) + quoted
