"""One I2CP client session with one router, as a sans-IO state machine.

Feed it the bytes the router sent (:meth:`ClientSession.receive`), get events back, and write
whatever :meth:`ClientSession.data_to_send` returns. The asyncio frontend is a thin loop around
it; the tests drive it with a scripted router. Sequence (I2CP spec, i2pd I2CP.cpp):

    client: 0x2A GetDate          router: SetDate
    client: CreateSession         router: SessionStatus(created, id)
                                  router: RequestVariableLeaseSet(leases)   (repeatedly)
    client: CreateLeaseSet2       ...
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .keys import DestinationKeys
from .messages import (
    PROTOCOL_BYTE,
    CreateLeaseSet2,
    CreateSession,
    DestroySession,
    FrameDecoder,
    GetDate,
    HostLookup,
    HostReply,
    LOOKUP_HASH,
    Message,
    MessagePayload,
    MessageStatus,
    ReconfigureSession,
    RequestVariableLeaseSet,
    SendMessage,
    SessionStatus,
    SessionStatusCode,
    SetDate,
    UnknownMessage,
)
from .structures import STORE_TYPE_LEASESET2, Destination, Lease, LeaseSet2
from .wire import DecodeError

CLIENT_VERSION = "0.9.57"
DONT_PUBLISH = "i2cp.dontPublishLeaseSet"


class State(Enum):
    NEW = "new"
    AWAIT_DATE = "await-date"
    AWAIT_STATUS = "await-status"
    UP = "up"
    CLOSED = "closed"


@dataclass(frozen=True)
class SessionUp:
    session_id: int
    router_version: str


@dataclass(frozen=True)
class LeasesRequested:
    leases: tuple[Lease, ...]


@dataclass(frozen=True)
class PayloadReceived:
    payload: bytes


@dataclass(frozen=True)
class SendStatus:
    nonce: int
    status: int


@dataclass(frozen=True)
class Reconfigured:
    accepted: bool


@dataclass(frozen=True)
class LookupAnswered:
    request_id: int
    destination: Destination | None


@dataclass(frozen=True)
class SessionClosed:
    """The session is over; the frontend drops the connection and reconnects later."""

    reason: str


Event = SessionUp | LeasesRequested | PayloadReceived | SendStatus | Reconfigured | LookupAnswered | SessionClosed


class ClientSession:
    """I2CP client side for one Destination on one router."""

    def __init__(self, keys: DestinationKeys, options: dict[str, str]) -> None:
        self.keys = keys
        self.options = dict(options)
        self.state = State.NEW
        self.session_id: int | None = None
        self._decoder = FrameDecoder()
        self._out = bytearray()
        self._reconfiguring = 0
        self._next_request = 1
        self._router_version = ""

    # -- outgoing -------------------------------------------------------------------------------

    def start(self) -> None:
        self._out += PROTOCOL_BYTE + GetDate(CLIENT_VERSION).frame()
        self.state = State.AWAIT_DATE

    def data_to_send(self) -> bytes:
        data, self._out = bytes(self._out), bytearray()
        return data

    def _send(self, message: Message) -> None:
        self._out += message.frame()

    def _require_up(self) -> int:
        if self.state is not State.UP or self.session_id is None:
            raise RuntimeError(f"session is {self.state.value}, not up")
        return self.session_id

    def give_lease_set(self, lease_set: LeaseSet2) -> None:
        """CreateLeaseSet2: the router adopts (and, if publishing, publishes) this LeaseSet."""
        self._send(CreateLeaseSet2(self._require_up(), STORE_TYPE_LEASESET2, lease_set, self.keys.private_key_sections()))

    def set_publishing(self, publish: bool, now_ms: int) -> None:
        self.options[DONT_PUBLISH] = "false" if publish else "true"
        if self.state is State.UP:
            self._reconfiguring += 1
            self._send(ReconfigureSession(self._require_up(), self.keys.session_config(self.options, now_ms)))

    def send_payload(self, to: Destination, payload: bytes, nonce: int) -> None:
        self._send(SendMessage(self._require_up(), to, payload, nonce))

    def lookup(self, ident_hash: bytes, timeout_ms: int = 10_000) -> int:
        request_id = self._next_request
        self._next_request += 1
        self._send(HostLookup(self._require_up(), request_id, timeout_ms, LOOKUP_HASH, ident_hash))
        return request_id

    def destroy(self) -> None:
        if self.state is State.UP and self.session_id is not None:
            self._send(DestroySession(self.session_id))
        self.state = State.CLOSED

    # -- incoming -------------------------------------------------------------------------------

    def receive(self, data: bytes, now_ms: int) -> list[Event]:
        if self.state is State.CLOSED:
            return []
        try:
            messages = self._decoder.feed(data)
        except DecodeError as exc:
            return [self._close(f"malformed I2CP from router: {exc}")]
        events: list[Event] = []
        for message in messages:
            event = self._handle(message, now_ms)
            if event is not None:
                events.append(event)
            if self.state is State.CLOSED:
                break
        return events

    def connection_lost(self) -> list[Event]:
        if self.state is State.CLOSED:
            return []
        return [self._close("connection to router lost")]

    def _close(self, reason: str) -> SessionClosed:
        self.state = State.CLOSED
        return SessionClosed(reason)

    def _handle(self, message: Message | UnknownMessage, now_ms: int) -> Event | None:
        if isinstance(message, SetDate) and self.state is State.AWAIT_DATE:
            self._send(CreateSession(self.keys.session_config(self.options, now_ms)))
            self.state = State.AWAIT_STATUS
            self._router_version = message.version
            return None
        if isinstance(message, SessionStatus):
            return self._on_status(message)
        if self.state is not State.UP:
            return None if isinstance(message, UnknownMessage) else self._close(f"unexpected {type(message).__name__}")
        if isinstance(message, RequestVariableLeaseSet):
            return LeasesRequested(message.leases)
        if isinstance(message, MessagePayload):
            return PayloadReceived(message.payload)
        if isinstance(message, MessageStatus):
            return SendStatus(message.nonce, message.status)
        if isinstance(message, HostReply):
            return LookupAnswered(message.request_id, message.destination)
        return None

    def _on_status(self, message: SessionStatus) -> Event | None:
        if self.state is State.AWAIT_STATUS:
            if message.status == SessionStatusCode.CREATED:
                self.state, self.session_id = State.UP, message.session_id
                return SessionUp(message.session_id, self._router_version)
            return self._close(f"router refused the session (status {message.status})")
        if self.state is not State.UP:
            return None
        if message.status == SessionStatusCode.DESTROYED:
            return self._close("router destroyed the session")
        if self._reconfiguring and message.status in (SessionStatusCode.UPDATED, SessionStatusCode.INVALID):
            self._reconfiguring -= 1
            return Reconfigured(message.status == SessionStatusCode.UPDATED)
        return None
