"""A scripted I2CP router (router side of the protocol) for asyncio tests of the frontends.

It behaves like i2pd 2.45.1 where the balancer depends on it: SetDate for GetDate, verified
CreateSession -> SessionStatus(created), RequestVariableLeaseSet on demand, CreateLeaseSet2
checked (session id, parse, signature), ReconfigureSession -> SessionStatus(updated).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field

from agents.balancer.messages import (
    CreateLeaseSet2,
    CreateSession,
    FrameDecoder,
    GetDate,
    MessagePayload,
    ReconfigureSession,
    RequestVariableLeaseSet,
    SendMessage,
    SessionStatus,
    SetDate,
)
from agents.balancer.structures import Lease


def make_leases(router_tag: int, count: int, end_ms: int) -> tuple[Lease, ...]:
    return tuple(Lease(bytes([router_tag]) * 32, router_tag * 1000 + i, end_ms + i * 1000) for i in range(count))


@dataclass
class FakeRouter:
    leases: tuple[Lease, ...] = ()
    port: int = 0
    created: int = 0
    lease_sets: list[CreateLeaseSet2] = field(default_factory=list)
    publishing: list[bool] = field(default_factory=list)
    sent: list[SendMessage] = field(default_factory=list)
    _server: asyncio.AbstractServer | None = None
    _writers: list[tuple[asyncio.StreamWriter, int]] = field(default_factory=list)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """The router dies: listener closed, sessions cut."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer, _ in self._writers:
            writer.close()
        self._writers.clear()

    def request_lease_set(self) -> None:
        for writer, sid in self._writers:
            writer.write(RequestVariableLeaseSet(sid, self.leases).frame())

    def deliver(self, payload: bytes) -> None:
        for writer, sid in self._writers:
            writer.write(MessagePayload(sid, 1, payload).frame())

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = FrameDecoder(expect_protocol_byte=True)
        sid = int.from_bytes(os.urandom(2), "big") & 0x7FFF
        while data := await reader.read(65536):
            for msg in decoder.feed(data):
                if isinstance(msg, GetDate):
                    writer.write(SetDate(1_700_000_000_000, msg.version).frame())
                elif isinstance(msg, CreateSession):
                    ok = msg.config.verify()
                    writer.write(SessionStatus(sid, 1 if ok else 3).frame())
                    if ok:
                        self.created += 1
                        self.publishing.append(msg.config.options.get("i2cp.dontPublishLeaseSet") != "true")
                        self._writers.append((writer, sid))
                elif isinstance(msg, ReconfigureSession):
                    ok = msg.session_id == sid and msg.config.verify()
                    if ok:
                        self.publishing.append(msg.config.options.get("i2cp.dontPublishLeaseSet") != "true")
                    writer.write(SessionStatus(sid, 2 if ok else 3).frame())
                elif isinstance(msg, CreateLeaseSet2):
                    assert msg.session_id == sid and msg.lease_set.verify()
                    self.lease_sets.append(msg)
                elif isinstance(msg, SendMessage):
                    self.sent.append(msg)
        writer.close()
