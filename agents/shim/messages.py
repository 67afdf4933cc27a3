"""Every Shim6 message and option, declared once (RFC 5533 section 5, RFC 5534 section 5).

Each declaration is a field table; ``wire.define`` turns it into a frozen dataclass and the
same table drives ``encode`` and ``decode``.  Layouts after the common header (Next Header,
Hdr Ext Len, P, Type, Type-specific, S, Checksum):

=============  ===========================================================================
I1             R, Initiator Context Tag(47), Initiator Nonce(32)
R1             Reserved2(16), Initiator Nonce, Responder Nonce
I2             R, Initiator Context Tag, Initiator Nonce, Responder Nonce, Reserved2(32)
R2             R, Responder Context Tag, Initiator Nonce
R1bis          R, Packet Context Tag, Responder Nonce
I2bis          R, Initiator Context Tag, Initiator Nonce, Responder Nonce, Reserved2(49),
               Packet Context Tag
Update Req/Ack R, Receiver Context Tag, Request Nonce
Keepalive      R, Receiver Context Tag, Reserved2(32)                     (RFC 5534 5.2)
Probe          R, Receiver Context Tag, Precvd(4), Psent(4), Sta(2), Reserved2(22),
               Psent sent reports, Precvd received reports (40 octets each) (RFC 5534 5.3)
=============  ===========================================================================
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass
from typing import Any

from .wire import (
    NO_NEXT_HEADER,
    Address,
    Align,
    Array,
    BitReader,
    BitWriter,
    Count,
    Record,
    Reserved,
    Rest,
    ShimDecodeError,
    ShimEncodeError,
    SizedTuples,
    UInt,
    decode_fields,
    define,
    encode_fields,
    internet_checksum,
)

CONTEXT_TAG_BITS = 47
MAX_CONTEXT_TAG = (1 << CONTEXT_TAG_BITS) - 1

VERIFY_HBA = 1
VERIFY_CGA = 2

FLAG_BROKEN = 0x01
FLAG_TEMPORARY = 0x02

REAP_OPERATIONAL = 0
REAP_EXPLORING = 1
REAP_INBOUND_OK = 2

#: 128-bit CGA Message Type tag for Shim6 signatures (RFC 5533 section 5.15.5).
SHIM6_CGA_TAG = bytes.fromhex("4a3056624858574b3655416f506a6d48")

OPTIONS: dict[int, type] = {}
MESSAGES: dict[int, type] = {}


def _option(name: str, code: int, layout: tuple[Any, ...]) -> type:
    cls = define(name, layout, [("critical", bool, False)], {"TYPE": code})
    OPTIONS[code] = cls
    return cls


def _message(name: str, code: int, layout: tuple[Any, ...]) -> type:
    cls = define(name, layout, [("options", tuple, ())], {"TYPE": code})
    MESSAGES[code] = cls
    return cls


def _tag(name: str) -> tuple[Any, ...]:
    """The recurring 'R bit + 47-bit context tag' pair."""
    return (Reserved(1), UInt(name, CONTEXT_TAG_BITS))


# --- options (RFC 5533 section 5.15; Keepalive Timeout: RFC 5534 section 5.4) -----------

ResponderValidator = _option("ResponderValidator", 1, (Rest("validator"),))
LocatorList = _option(
    "LocatorList",
    2,
    (
        UInt("generation", 32),
        Count("num_locators", 8, of="locators"),
        Array("methods", UInt("method", 8), count="num_locators"),
        Align(8, phase=4),
        Array("locators", Address("locator"), count="num_locators"),
    ),
)
LocatorPreferences = _option(
    "LocatorPreferences",
    3,
    (UInt("generation", 32), UInt("element_len", 8), SizedTuples("elements", "element_len", (1, 2, 3))),
)
CgaParameterDataStructure = _option("CgaParameterDataStructure", 4, (Rest("pds"),))
CgaSignature = _option("CgaSignature", 5, (Rest("signature"),))
UlidPair = _option("UlidPair", 6, (Reserved(32), Address("sender_ulid"), Address("receiver_ulid")))
ForkedInstanceIdentifier = _option("ForkedInstanceIdentifier", 7, (UInt("fii", 32),))
KeepaliveTimeout = _option("KeepaliveTimeout", 10, (Reserved(16), UInt("timeout", 16)))


@dataclass(frozen=True)
class UnknownOption:
    """An option type this agent does not know, kept verbatim (its C bit decides the fate)."""

    type: int
    data: bytes
    critical: bool = False


# --- probe reports and messages -------------------------------------------------------------

ProbeReport = define(
    "ProbeReport",
    (Address("source"), Address("destination"), UInt("nonce", 32), UInt("data", 32)),
    [],
    {},
)

I1 = _message("I1", 1, (*_tag("initiator_context_tag"), UInt("initiator_nonce", 32)))
R1 = _message("R1", 2, (Reserved(16), UInt("initiator_nonce", 32), UInt("responder_nonce", 32)))
I2 = _message(
    "I2",
    3,
    (*_tag("initiator_context_tag"), UInt("initiator_nonce", 32), UInt("responder_nonce", 32), Reserved(32)),
)
R2 = _message("R2", 4, (*_tag("responder_context_tag"), UInt("initiator_nonce", 32)))
R1bis = _message("R1bis", 5, (*_tag("packet_context_tag"), UInt("responder_nonce", 32)))
I2bis = _message(
    "I2bis",
    6,
    (
        *_tag("initiator_context_tag"),
        UInt("initiator_nonce", 32),
        UInt("responder_nonce", 32),
        Reserved(48),
        *_tag("packet_context_tag"),
    ),
)
_UPDATE_LAYOUT = (*_tag("receiver_context_tag"), UInt("request_nonce", 32))
UpdateRequest = _message("UpdateRequest", 64, _UPDATE_LAYOUT)
UpdateAck = _message("UpdateAck", 65, _UPDATE_LAYOUT)
Keepalive = _message("Keepalive", 66, (*_tag("receiver_context_tag"), Reserved(32)))
Probe = _message(
    "Probe",
    67,
    (
        *_tag("receiver_context_tag"),
        Count("precvd", 4, of="received"),
        Count("psent", 4, of="sent"),
        UInt("state", 2),
        Reserved(22),
        Array("sent", Record("report", ProbeReport), count="psent"),
        Array("received", Record("report", ProbeReport), count="precvd"),
    ),
)


@dataclass(frozen=True)
class PayloadHeader:
    """The Shim6 payload extension header: P=1 and the receiver's 47-bit context tag."""

    next_header: int
    context_tag: int


# --- encoding -------------------------------------------------------------------------------


def encode_option(option: Any) -> bytes:
    if isinstance(option, UnknownOption):
        code, content = option.type, option.data
    else:
        writer = BitWriter()
        encode_fields(writer, type(option).LAYOUT, option)
        code, content = type(option).TYPE, writer.getvalue()
    if not 0 <= code < (1 << 15) or len(content) > 0xFFFF:
        raise ShimEncodeError("option type or length out of range")
    head = ((code << 1) | int(bool(option.critical))).to_bytes(2, "big") + len(content).to_bytes(2, "big")
    return head + content + bytes(-(4 + len(content)) % 8)


def encode(message: Any) -> bytes:
    """Bytes of a control message (checksum filled in) or of a payload extension header."""
    if isinstance(message, PayloadHeader):
        if not 0 <= message.context_tag <= MAX_CONTEXT_TAG:
            raise ShimEncodeError("context tag out of range")
        return bytes([message.next_header, 0]) + ((1 << 47) | message.context_tag).to_bytes(6, "big")
    writer = BitWriter()
    encode_fields(writer, type(message).LAYOUT, message)
    body = writer.getvalue() + b"".join(encode_option(o) for o in message.options)
    total = 6 + len(body)
    if total % 8 or total > 2048:
        raise ShimEncodeError(f"message of {total} octets is not a valid extension header")
    header = bytes([NO_NEXT_HEADER, total // 8 - 1, type(message).TYPE & 0x7F, 0])
    unsummed = header + b"\0\0" + body
    return header + internet_checksum(unsummed).to_bytes(2, "big") + body


# --- decoding -------------------------------------------------------------------------------


def _decode_options(data: bytes, offset: int, end: int) -> tuple[Any, ...]:
    options = []
    while offset < end:
        if end - offset < 4:
            raise ShimDecodeError("truncated option header")
        word = int.from_bytes(data[offset : offset + 2], "big")
        length = int.from_bytes(data[offset + 2 : offset + 4], "big")
        padded = 4 + length + (-(4 + length) % 8)
        if offset + padded > end:
            raise ShimDecodeError("option runs past the end of the header")
        code, critical = word >> 1, bool(word & 1)
        cls = OPTIONS.get(code)
        if cls is None:
            options.append(UnknownOption(code, bytes(data[offset + 4 : offset + 4 + length]), critical))
        else:
            reader = BitReader(data, offset + 4, offset + 4 + length)
            values = decode_fields(reader, cls.LAYOUT)
            if reader.remaining:
                raise ShimDecodeError(f"{cls.__name__} option longer than its fields")
            options.append(cls(**values, critical=critical))
        offset += padded
    return tuple(options)


def decode(data: bytes, verify_checksum: bool = True) -> Any:
    """Parse a Shim6 header (payload or control); raises only ``ShimDecodeError``."""
    try:
        return _decode(bytes(data), verify_checksum)
    except ShimDecodeError:
        raise
    except (ValueError, TypeError, IndexError, KeyError) as exc:  # defensive: never leak others
        raise ShimDecodeError(f"malformed header: {exc}") from exc


def _decode(data: bytes, verify_checksum: bool) -> Any:
    if len(data) < 8:
        raise ShimDecodeError("shorter than 8 octets")
    total = (data[1] + 1) * 8
    if len(data) < total:
        raise ShimDecodeError(f"Hdr Ext Len says {total} octets, have {len(data)}")
    if data[2] & 0x80:
        if data[1] != 0:
            raise ShimDecodeError("payload extension header with Hdr Ext Len != 0")
        return PayloadHeader(data[0], int.from_bytes(data[2:8], "big") & MAX_CONTEXT_TAG)
    if data[3] & 0x01:
        raise ShimDecodeError("S bit set: a HIP message, not Shim6")
    if verify_checksum and internet_checksum(data[:total]) != 0:
        raise ShimDecodeError("bad checksum")
    cls = MESSAGES.get(data[2] & 0x7F)
    if cls is None:
        raise ShimDecodeError(f"unknown message type {data[2] & 0x7F}")
    reader = BitReader(data, 6, total)
    values = decode_fields(reader, cls.LAYOUT)
    return cls(**values, options=_decode_options(data, 6 + reader.offset, total))


def option_of(message: Any, cls: type) -> Any | None:
    """The first option of class ``cls`` in a message, or None."""
    return next((o for o in message.options if isinstance(o, cls)), None)


def describe(value: Any) -> Any:
    """A JSON-friendly view of a message or option (for events and ``shimctl``)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {"type": type(value).__name__}
        out.update({f.name: describe(getattr(value, f.name)) for f in dataclasses.fields(value)})
        return out
    if isinstance(value, (tuple, list)):
        return [describe(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, ipaddress.IPv6Address):
        return str(value)
    return value
