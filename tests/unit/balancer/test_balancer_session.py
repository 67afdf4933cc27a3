"""The sans-IO I2CP client session, driven by scripted router bytes."""

from __future__ import annotations

from agents.balancer.keys import DestinationKeys
from agents.balancer.messages import (
    CreateLeaseSet2,
    CreateSession,
    FrameDecoder,
    GetDate,
    MessagePayload,
    ReconfigureSession,
    RequestVariableLeaseSet,
    SessionStatus,
    SetDate,
)
from agents.balancer.session import (
    ClientSession,
    LeasesRequested,
    PayloadReceived,
    Reconfigured,
    SessionClosed,
    SessionUp,
    State,
)
from agents.balancer.structures import Lease

KEYS = DestinationKeys.generate()
NOW = 1_800_000_000_000


def handshake(session_id: int = 77) -> tuple[ClientSession, FrameDecoder]:
    session = ClientSession(KEYS, {"inbound.length": "0", "i2cp.dontPublishLeaseSet": "true"})
    router = FrameDecoder(expect_protocol_byte=True)
    session.start()
    assert router.feed(session.data_to_send()) == [GetDate("0.9.57")]
    assert session.receive(SetDate(NOW, "0.9.57").frame(), NOW) == []
    (create,) = router.feed(session.data_to_send())
    assert isinstance(create, CreateSession) and create.config.verify()
    assert create.config.destination == KEYS.destination
    assert create.config.options["i2cp.dontPublishLeaseSet"] == "true"
    assert session.receive(SessionStatus(session_id, 1).frame(), NOW) == [SessionUp(session_id, "0.9.57")]
    return session, router


def test_handshake_then_leases_then_leaseset() -> None:
    session, router = handshake()
    lease = Lease(b"g" * 32, 9, NOW + 600_000)
    events = session.receive(RequestVariableLeaseSet(77, (lease,)).frame(), NOW)
    assert events == [LeasesRequested((lease,))]
    ls = KEYS.lease_set((), NOW // 1000)
    session.give_lease_set(ls)
    (msg,) = router.feed(session.data_to_send())
    assert isinstance(msg, CreateLeaseSet2) and msg.session_id == 77 and msg.lease_set == ls
    assert msg.private_keys[0].key == KEYS.encryption_private


def test_messages_split_across_reads_and_batched() -> None:
    session, _ = handshake()
    stream = MessagePayload(77, 1, b"a").frame() + MessagePayload(77, 2, b"b").frame()
    events = session.receive(stream[:7], NOW) + session.receive(stream[7:], NOW)
    assert events == [PayloadReceived(b"a"), PayloadReceived(b"b")]


def test_reconfigure_publishing() -> None:
    session, router = handshake()
    session.set_publishing(True, NOW)
    (msg,) = router.feed(session.data_to_send())
    assert isinstance(msg, ReconfigureSession) and msg.session_id == 77 and msg.config.verify()
    assert msg.config.options["i2cp.dontPublishLeaseSet"] == "false"
    assert session.receive(SessionStatus(77, 2).frame(), NOW) == [Reconfigured(True)]
    session.set_publishing(False, NOW)
    assert session.receive(SessionStatus(77, 3).frame(), NOW) == [Reconfigured(False)]
    assert session.state is State.UP


def test_refused_session_closes() -> None:
    session = ClientSession(KEYS, {})
    session.start()
    session.receive(SetDate(NOW, "x").frame(), NOW)
    (event,) = session.receive(SessionStatus(0xFFFF, 3).frame(), NOW)
    assert isinstance(event, SessionClosed) and "status 3" in event.reason
    assert session.state is State.CLOSED


def test_malformed_router_bytes_close_the_session_instead_of_raising() -> None:
    session, _ = handshake()
    bad_rvls = (3).to_bytes(4, "big") + bytes([37]) + b"\x00\x4d\x05"  # claims 5 leases, has none
    (event,) = session.receive(bad_rvls, NOW)
    assert isinstance(event, SessionClosed) and "malformed" in event.reason
    assert session.receive(MessagePayload(77, 1, b"x").frame(), NOW) == []


def test_oversized_frame_from_router_closes_the_session() -> None:
    session, _ = handshake()
    (event,) = session.receive(b"\xff\xff\xff\xff\x1f", NOW)
    assert isinstance(event, SessionClosed)


def test_router_destroying_the_session_and_connection_loss() -> None:
    session, _ = handshake()
    assert isinstance(session.receive(SessionStatus(77, 0).frame(), NOW)[0], SessionClosed)
    session2, _ = handshake()
    assert isinstance(session2.connection_lost()[0], SessionClosed)
    assert session2.connection_lost() == []


def test_payload_before_session_is_a_protocol_violation() -> None:
    session = ClientSession(KEYS, {})
    session.start()
    (event,) = session.receive(MessagePayload(1, 1, b"x").frame(), NOW)
    assert isinstance(event, SessionClosed)
