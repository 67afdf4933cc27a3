"""Every Shim6 message and option, declared once (RFC 5533 section 5, RFC 5534 section 5).

Each declaration is a ``fields_desc`` of :mod:`agents.wirecodec` field kinds; the frozen
dataclass and both ``encode`` and ``decode`` derive from it.  Layouts after the common header (Next Header,
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

from ..wirecodec import IPv6, TLV, Align, Attr, Bytes, Const, Count, Field, List, Nested, Reader, Reserved, UInt, Writer
from .wire import NO_NEXT_HEADER, ShimDecodeError, ShimEncodeError, ShimStruct, internet_checksum

CONTEXT_TAG_BITS = 47
MAX_CONTEXT_TAG = (1 << CONTEXT_TAG_BITS) - 1
MAX_HEADER = 2048

VERIFY_HBA = 1
VERIFY_CGA = 2

FLAG_BROKEN = 0x01
FLAG_TEMPORARY = 0x02

REAP_OPERATIONAL = 0
REAP_EXPLORING = 1
REAP_INBOUND_OK = 2

#: 128-bit CGA Message Type tag for Shim6 signatures (RFC 5533 section 5.15.5).
SHIM6_CGA_TAG = bytes.fromhex("4a3056624858574b3655416f506a6d48")

OPTIONS: dict[int, type[ShimStruct]] = {}
MESSAGES: dict[int, type[ShimStruct]] = {}


@dataclass(frozen=True)
class SizedTuples(Field):
    """Elements of ``size`` one-octet integers each, ``size`` read from an earlier field.

    Used by Locator Preferences, whose element length (1, 2 or 3: flags, priority, weight)
    is carried in the option itself.
    """

    name: str
    size: str
    allowed: tuple[int, ...]

    def encode(self, value: Any, out: Writer, ctx: Any) -> None:
        size = ctx[self.size]
        if size not in self.allowed:
            out.fail(f"element length {size} not in {self.allowed}")
        for element in value:
            if len(element) != size:
                out.fail("element of the wrong length")
            out.octets(bytes(element))

    def decode(self, reader: Reader, ctx: Any) -> tuple[tuple[int, ...], ...]:
        size = ctx[self.size]
        if size not in self.allowed:
            reader.fail(f"element length {size} not in {self.allowed}")
        if reader.remaining % size:
            reader.fail("elements do not fill the option")
        return tuple(tuple(reader.take(size)) for _ in range(reader.remaining // size))


def _declare(name: str, fields: tuple[Field, ...], **namespace: Any) -> type[ShimStruct]:
    return type(name, (ShimStruct,), {"fields_desc": fields, "__module__": __name__, "__qualname__": name, **namespace})


def _option(name: str, code: int, fields: tuple[Field, ...]) -> type[ShimStruct]:
    cls = _declare(name, (*fields, Attr("critical", default=False)), TYPE=code)
    OPTIONS[code] = cls
    return cls


@dataclass(frozen=True)
class UnknownOption:
    """An option type this agent does not know, kept verbatim (its C bit decides the fate)."""

    type: int
    data: bytes
    critical: bool = False


#: Options: 15-bit type, C bit, 16-bit content length, content, padding to 8 octets (5.15).
OPTIONS_FIELD = TLV("options", OPTIONS, UnknownOption, type_bits=15, flag="critical", length_bits=16, align=8, default=())


def _message(name: str, code: int, fields: tuple[Field, ...]) -> type[ShimStruct]:
    cls = _declare(name, (*fields, OPTIONS_FIELD), TYPE=code)
    MESSAGES[code] = cls
    return cls


def _tag(name: str) -> tuple[Field, ...]:
    """The recurring 'R bit + 47-bit context tag' pair."""
    return (Reserved(1), UInt(name, CONTEXT_TAG_BITS))


# --- options (RFC 5533 section 5.15; Keepalive Timeout: RFC 5534 section 5.4) -----------

ResponderValidator = _option("ResponderValidator", 1, (Bytes("validator"),))
LocatorList = _option(
    "LocatorList",
    2,
    (
        UInt("generation", 32),
        Count("num_locators", 8, of=("methods", "locators")),
        List("methods", UInt("method", 8), count="num_locators"),
        Align(8, phase=4),
        List("locators", IPv6("locator"), count="num_locators"),
    ),
)
LocatorPreferences = _option(
    "LocatorPreferences",
    3,
    (UInt("generation", 32), UInt("element_len", 8), SizedTuples("elements", "element_len", (1, 2, 3))),
)
CgaParameterDataStructure = _option("CgaParameterDataStructure", 4, (Bytes("pds"),))
CgaSignature = _option("CgaSignature", 5, (Bytes("signature"),))
UlidPair = _option("UlidPair", 6, (Reserved(32), IPv6("sender_ulid"), IPv6("receiver_ulid")))
ForkedInstanceIdentifier = _option("ForkedInstanceIdentifier", 7, (UInt("fii", 32),))
KeepaliveTimeout = _option("KeepaliveTimeout", 10, (Reserved(16), UInt("timeout", 16)))


# --- probe reports and messages -------------------------------------------------------------

ProbeReport = _declare("ProbeReport", (IPv6("source"), IPv6("destination"), UInt("nonce", 32), UInt("data", 32)))

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
        List("sent", Nested("report", ProbeReport), count="psent"),
        List("received", Nested("report", ProbeReport), count="precvd"),
    ),
)


class PayloadHeader(ShimStruct):
    """The Shim6 payload extension header: P=1 and the receiver's 47-bit context tag."""

    fields_desc = (
        UInt("next_header", 8),
        Const(8, 0, what="payload extension header Hdr Ext Len"),
        Const(1, 1, what="P bit"),
        UInt("context_tag", CONTEXT_TAG_BITS),
    )


#: The common control header (5.1): Next Header 59, Hdr Ext Len, P=0, Type, Type-specific, S=0,
#: Checksum.  Length and checksum are filled in by ``encode``; ``decode`` checks them.
class ControlHeader(ShimStruct):
    fields_desc = (
        UInt("next_header", 8),
        UInt("hdr_ext_len", 8),
        Const(1, 0, what="P bit"),
        UInt("type", 7),
        Reserved(7),
        Const(1, 0, what="S bit (set: a HIP message, not Shim6)"),
        UInt("checksum", 16),
    )


# --- encoding -------------------------------------------------------------------------------


def encode_option(option: Any) -> bytes:
    """One option TLV, padded to 8 octets."""
    out = Writer(ShimEncodeError)
    OPTIONS_FIELD.encode_item(option, out)
    return out.getvalue()


def encode(message: Any) -> bytes:
    """Bytes of a control message (checksum filled in) or of a payload extension header."""
    if isinstance(message, PayloadHeader):
        return message.to_bytes()
    body = message.to_bytes()
    total = 6 + len(body)
    if total % 8 or total > MAX_HEADER:
        raise ShimEncodeError(f"message of {total} octets is not a valid extension header")
    header = ControlHeader(NO_NEXT_HEADER, total // 8 - 1, type(message).TYPE, 0).to_bytes()
    checksum = internet_checksum(header + body)
    return header[:4] + checksum.to_bytes(2, "big") + body


# --- decoding -------------------------------------------------------------------------------


def decode(data: bytes, verify_checksum: bool = True) -> Any:
    """Parse a Shim6 header (payload or control); raises only ``ShimDecodeError``."""
    data = bytes(data)
    if len(data) < 8:
        raise ShimDecodeError("shorter than 8 octets")
    total = (data[1] + 1) * 8
    if len(data) < total:
        raise ShimDecodeError(f"Hdr Ext Len says {total} octets, have {len(data)}")
    if data[2] & 0x80:
        return PayloadHeader.from_bytes(data[:8])
    reader = Reader(data, 0, total, error=ShimDecodeError)
    header = ControlHeader.decode_from(reader)
    if verify_checksum and internet_checksum(data[:total]) != 0:
        raise ShimDecodeError("bad checksum")
    cls = MESSAGES.get(header.type)
    if cls is None:
        raise ShimDecodeError(f"unknown message type {header.type}")
    return cls.decode_from(reader)


def option_offset(message: Any, option: Any) -> int:
    """Where ``option`` (one of ``message``'s) starts in the encoded message: the fixed part and each
    option are padded to 8 octets, so it is the length of the message with the options before it."""
    index = message.options.index(option)
    return len(encode(dataclasses.replace(message, options=message.options[:index])))


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
