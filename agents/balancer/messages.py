"""I2CP messages (spec: geti2p.net/spec/i2cp; router side: i2pd libi2pd_client/I2CP.cpp).

Each message is a declared structure (:class:`~.wire.I2cpStruct`) with its type number. Framing is
``length(4) type(1) body``; a connection starts with the protocol byte 0x2A from the client.
:class:`FrameDecoder` is sans-IO: feed it bytes, get messages. Messages this client does not know
come back as :class:`UnknownMessage` rather than an error, because routers may send extras
(BandwidthLimits, DestReply...) that are harmless to ignore.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from ..wirecodec import Absent, Bytes, Field, List, Nested, Switch, Text, UInt
from .structures import MAX_LEASES, Destination, KeySection, Lease, LeaseSet2, SessionConfig
from .wire import DecodeError, EncodeError, I2cpStruct

PROTOCOL_BYTE = b"\x2a"
MAX_BODY = 0xFFFF  # i2pd I2CP_MAX_MESSAGE_LENGTH; routers refuse longer messages
HEADER = 5
NO_SESSION = 0xFFFF


class Message(I2cpStruct):
    """An I2CP message: a declared structure with its type number."""

    TYPE: ClassVar[int] = -1

    def frame(self) -> bytes:
        body = self.to_bytes()
        if len(body) > MAX_BODY:
            raise EncodeError(f"{type(self).__name__} body of {len(body)} bytes exceeds {MAX_BODY}")
        return len(body).to_bytes(4, "big") + bytes([self.TYPE]) + body


class SessionStatusCode:
    DESTROYED = 0
    CREATED = 1
    UPDATED = 2
    INVALID = 3
    REFUSED = 4


class MessageStatusCode:
    ACCEPTED = 1
    GUARANTEED_SUCCESS = 4
    GUARANTEED_FAILURE = 5
    NO_LOCAL_TUNNELS = 16
    NO_LEASESET = 21


class CreateSession(Message):
    TYPE = 1
    fields_desc = (Nested("config", SessionConfig),)


class ReconfigureSession(Message):
    TYPE = 2
    fields_desc = (UInt("session_id", 16), Nested("config", SessionConfig))


class DestroySession(Message):
    TYPE = 3
    fields_desc = (UInt("session_id", 16),)


class SendMessage(Message):
    TYPE = 5
    fields_desc = (
        UInt("session_id", 16),
        Nested("destination", Destination),
        Bytes("payload", prefix=32),
        UInt("nonce", 32),
    )


class SessionStatus(Message):
    TYPE = 20
    fields_desc = (UInt("session_id", 16), UInt("status", 8))


class MessageStatus(Message):
    TYPE = 22
    fields_desc = (
        UInt("session_id", 16),
        UInt("message_id", 32),
        UInt("status", 8),
        UInt("size", 32),
        UInt("nonce", 32),
    )


class MessagePayload(Message):
    TYPE = 31
    fields_desc = (
        UInt("session_id", 16),
        UInt("message_id", 32),
        Bytes("payload", prefix=32),
    )


class GetDate(Message):
    TYPE = 32
    fields_desc = (Text("version", prefix=8),)


class SetDate(Message):
    TYPE = 33
    fields_desc = (UInt("date_ms", 64), Text("version", prefix=8))


class RequestVariableLeaseSet(Message):
    """The router's inbound tunnels for the session: what the balancer gathers."""

    TYPE = 37
    fields_desc = (
        UInt("session_id", 16),
        List("leases", Nested("lease", Lease), prefix=8, limit=MAX_LEASES),
    )


LOOKUP_HASH = 0
LOOKUP_HOSTNAME = 1


def _lookup_query(ctx: Mapping[str, Any]) -> Field:
    if ctx["lookup_type"] == LOOKUP_HASH:
        return Bytes("query", size=32)
    if ctx["lookup_type"] == LOOKUP_HOSTNAME:
        return Text("query", prefix=8)
    raise DecodeError(f"HostLookup type {ctx['lookup_type']} is not supported")


class HostLookup(Message):
    TYPE = 38
    fields_desc = (
        UInt("session_id", 16),
        UInt("request_id", 32),
        UInt("timeout_ms", 32),
        UInt("lookup_type", 8),
        Switch("query", _lookup_query),
    )


def _reply_destination(ctx: Mapping[str, Any]) -> Field:
    return Nested("destination", Destination) if ctx["result"] == 0 else Absent("destination")


class HostReply(Message):
    TYPE = 39
    fields_desc = (
        UInt("session_id", 16),
        UInt("request_id", 32),
        UInt("result", 8),
        Switch("destination", _reply_destination),
    )


class CreateLeaseSet2(Message):
    """A client-built LeaseSet2 plus the private keys the router needs to decrypt for it."""

    TYPE = 41
    fields_desc = (
        UInt("session_id", 16),
        UInt("store_type", 8),
        Nested("lease_set", LeaseSet2),
        List("private_keys", Nested("key", KeySection), prefix=8, repr=False),
    )

    def validate(self) -> None:
        if self.store_type != 3:
            raise DecodeError(f"only standard LeaseSet2 (store type 3) is supported, got {self.store_type}")


MESSAGE_TYPES: dict[int, type[Message]] = {
    cls.TYPE: cls
    for cls in (
        CreateSession,
        ReconfigureSession,
        DestroySession,
        SendMessage,
        SessionStatus,
        MessageStatus,
        MessagePayload,
        GetDate,
        SetDate,
        RequestVariableLeaseSet,
        HostLookup,
        HostReply,
        CreateLeaseSet2,
    )
}


@dataclass(frozen=True)
class UnknownMessage:
    """A well-framed message of a type this client does not decode."""

    type: int
    body: bytes


def decode_message(msg_type: int, body: bytes) -> Message | UnknownMessage:
    cls = MESSAGE_TYPES.get(msg_type)
    if cls is None:
        return UnknownMessage(msg_type, bytes(body))
    return cls.from_bytes(body)


class FrameDecoder:
    """Sans-IO splitter of an I2CP byte stream into messages.

    ``expect_protocol_byte`` is for the router side of a connection (tests, fakes), where the
    first byte must be 0x2A. A DecodeError leaves the decoder unusable: the stream is lost.
    """

    def __init__(self, expect_protocol_byte: bool = False) -> None:
        self._buffer = bytearray()
        self._need_protocol_byte = expect_protocol_byte

    def feed(self, data: bytes) -> list[Message | UnknownMessage]:
        self._buffer += data
        if self._need_protocol_byte and self._buffer:
            if self._buffer[0:1] != PROTOCOL_BYTE:
                raise DecodeError(f"protocol byte 0x2a expected, got {self._buffer[0]:#04x}")
            del self._buffer[0]
            self._need_protocol_byte = False
        out: list[Message | UnknownMessage] = []
        while len(self._buffer) >= HEADER:
            length = int.from_bytes(self._buffer[0:4], "big")
            if length > MAX_BODY:
                raise DecodeError(f"message length {length} exceeds {MAX_BODY}")
            if len(self._buffer) < HEADER + length:
                break
            msg_type = self._buffer[4]
            body = bytes(self._buffer[HEADER : HEADER + length])
            del self._buffer[: HEADER + length]
            out.append(decode_message(msg_type, body))
        return out
