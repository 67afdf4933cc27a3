"""I2CP messages (spec: geti2p.net/spec/i2cp; router side: i2pd libi2pd_client/I2CP.cpp).

Each message is a declared :class:`~.wire.Structure` with its type number. Framing is
``length(4) type(1) body``; a connection starts with the protocol byte 0x2A from the client.
:class:`FrameDecoder` is sans-IO: feed it bytes, get messages. Messages this client does not know
come back as :class:`UnknownMessage` rather than an error, because routers may send extras
(BandwidthLimits, DestReply...) that are harmless to ignore.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from .structures import MAX_LEASES, Destination, KeySection, Lease, LeaseSet2, SessionConfig
from .wire import Absent, DecodeError, Depends, FixedBytes, I2PString, ListOf, Nested, Prefixed, Structure, UInt, wired

PROTOCOL_BYTE = b"\x2a"
MAX_BODY = 0xFFFF  # i2pd I2CP_MAX_MESSAGE_LENGTH; routers refuse longer messages
HEADER = 5
NO_SESSION = 0xFFFF


class Message(Structure):
    """An I2CP message: a declared structure with its type number."""

    TYPE: ClassVar[int] = -1

    def frame(self) -> bytes:
        body = self.to_bytes()
        if len(body) > MAX_BODY:
            raise ValueError(f"{type(self).__name__} body of {len(body)} bytes exceeds {MAX_BODY}")
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


@dataclass(frozen=True)
class CreateSession(Message):
    TYPE = 1
    config: SessionConfig = wired(Nested(SessionConfig))


@dataclass(frozen=True)
class ReconfigureSession(Message):
    TYPE = 2
    session_id: int = wired(UInt(2))
    config: SessionConfig = wired(Nested(SessionConfig))


@dataclass(frozen=True)
class DestroySession(Message):
    TYPE = 3
    session_id: int = wired(UInt(2))


@dataclass(frozen=True)
class SendMessage(Message):
    TYPE = 5
    session_id: int = wired(UInt(2))
    destination: Destination = wired(Nested(Destination))
    payload: bytes = wired(Prefixed(4))
    nonce: int = wired(UInt(4))


@dataclass(frozen=True)
class SessionStatus(Message):
    TYPE = 20
    session_id: int = wired(UInt(2))
    status: int = wired(UInt(1))


@dataclass(frozen=True)
class MessageStatus(Message):
    TYPE = 22
    session_id: int = wired(UInt(2))
    message_id: int = wired(UInt(4))
    status: int = wired(UInt(1))
    size: int = wired(UInt(4))
    nonce: int = wired(UInt(4))


@dataclass(frozen=True)
class MessagePayload(Message):
    TYPE = 31
    session_id: int = wired(UInt(2))
    message_id: int = wired(UInt(4))
    payload: bytes = wired(Prefixed(4))


@dataclass(frozen=True)
class GetDate(Message):
    TYPE = 32
    version: str = wired(I2PString())


@dataclass(frozen=True)
class SetDate(Message):
    TYPE = 33
    date_ms: int = wired(UInt(8))
    version: str = wired(I2PString())


@dataclass(frozen=True)
class RequestVariableLeaseSet(Message):
    """The router's inbound tunnels for the session: what the balancer gathers."""

    TYPE = 37
    session_id: int = wired(UInt(2))
    leases: tuple[Lease, ...] = wired(ListOf(Nested(Lease), limit=MAX_LEASES))


LOOKUP_HASH = 0
LOOKUP_HOSTNAME = 1


def _lookup_query(done: Mapping[str, Any]) -> FixedBytes | I2PString:
    if done["lookup_type"] == LOOKUP_HASH:
        return FixedBytes(32)
    if done["lookup_type"] == LOOKUP_HOSTNAME:
        return I2PString()
    raise DecodeError(f"HostLookup type {done['lookup_type']} is not supported")


@dataclass(frozen=True)
class HostLookup(Message):
    TYPE = 38
    session_id: int = wired(UInt(2))
    request_id: int = wired(UInt(4))
    timeout_ms: int = wired(UInt(4))
    lookup_type: int = wired(UInt(1))
    query: bytes | str = wired(Depends(_lookup_query))


def _reply_destination(done: Mapping[str, Any]) -> Nested[Destination] | Absent:
    return Nested(Destination) if done["result"] == 0 else Absent()


@dataclass(frozen=True)
class HostReply(Message):
    TYPE = 39
    session_id: int = wired(UInt(2))
    request_id: int = wired(UInt(4))
    result: int = wired(UInt(1))
    destination: Destination | None = wired(Depends(_reply_destination))


@dataclass(frozen=True)
class CreateLeaseSet2(Message):
    """A client-built LeaseSet2 plus the private keys the router needs to decrypt for it."""

    TYPE = 41
    session_id: int = wired(UInt(2))
    store_type: int = wired(UInt(1))
    lease_set: LeaseSet2 = wired(Nested(LeaseSet2))
    private_keys: tuple[KeySection, ...] = wired(ListOf(Nested(KeySection)), repr=False)

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
