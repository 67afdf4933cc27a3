"""The shared backend: the application behind the multihomed Destination.

Frontends hand it every incoming message, whichever router it arrived at. This one is an echo
service for repliable datagrams (what a SAM DATAGRAM client sends): it answers through the
frontend that received the request, signed as the Destination, ports swapped. It counts what it
saw per router so a scenario can tell which router carried the traffic.

It also moves clients whose router was lost to a survivor (:mod:`.handover`): frontends report
their router's state (up, leases published), and :meth:`EchoBackend.tick` sends the handover
datagram to the silent clients of a lost router.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from .datagrams import PROTO_DATAGRAM, AppPayload, RepliableDatagram
from .handover import HANDOVER_DATA, Handover, RouterView
from .keys import DestinationKeys
from .ports import PayloadSender
from .wire import DecodeError

log = logging.getLogger(__name__)


@dataclass
class EchoBackend:
    keys: DestinationKeys
    received: Counter[str] = field(default_factory=Counter)
    replied: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    handover: Handover | None = field(default_factory=Handover)
    clock: Callable[[], float] = time.monotonic
    routers: dict[str, tuple[PayloadSender, RouterView]] = field(default_factory=dict)
    handovers: Counter[str] = field(default_factory=Counter)

    def router_state(self, via: PayloadSender, up: bool, published: bool) -> None:
        before = self.routers.get(via.name)
        if self.handover is not None and not up and (before is None or before[1].up):
            self.handover.router_lost(via.name)
        if self.handover is not None and up and (before is None or not before[1].up):
            self.handover.router_up(via.name)
        self.routers[via.name] = (via, RouterView(up, published))

    def tick(self) -> None:
        """Have the other routers look up each client's LeaseSet in advance, and send the handover
        datagram to every silent client of a lost router that is due one."""
        if self.handover is None:
            return
        views = {name: view for name, (_, view) in self.routers.items()}
        for ask in self.handover.prefetch_due(self.clock(), views):
            self.routers[ask.router][0].prefetch(ask.client.destination)
        for nudge in self.handover.due(self.clock(), views):
            client = nudge.client
            answer = RepliableDatagram.signed_by(self.keys, HANDOVER_DATA)
            payload = AppPayload(PROTO_DATAGRAM, client.dst_port, client.src_port, answer.to_bytes())
            self.routers[nudge.router][0].send_payload(client.destination, payload.to_bytes())
            self.handovers[nudge.router] += 1
            log.info("backend: handover datagram to a client of %s via %s", client.router, nudge.router)

    async def run(self, every_s: float = 0.5) -> None:
        while True:
            self.tick()
            await asyncio.sleep(every_s)

    def deliver(self, via: PayloadSender, payload: bytes) -> None:
        self.received[via.name] += 1
        try:
            app = AppPayload.from_bytes(payload)
            if app.protocol != PROTO_DATAGRAM:
                raise DecodeError(f"protocol {app.protocol} is not a repliable datagram")
            request = RepliableDatagram.from_bytes(app.data)
        except DecodeError as exc:
            self.rejected[via.name] += 1
            log.info("backend: dropped message via %s: %s", via.name, exc)
            return
        if not request.verify():
            self.rejected[via.name] += 1
            log.info("backend: bad datagram signature via %s", via.name)
            return
        if self.handover is not None:
            self.handover.heard(request.sender, app.src_port, app.dst_port, via.name, self.clock())
        answer = RepliableDatagram.signed_by(self.keys, request.data)
        reply = AppPayload(PROTO_DATAGRAM, app.dst_port, app.src_port, answer.to_bytes())
        via.send_payload(request.sender, reply.to_bytes())
        self.replied[via.name] += 1

    def status(self) -> dict[str, object]:
        return {"received": dict(self.received), "replied": dict(self.replied), "rejected": dict(self.rejected),
                "handovers": dict(self.handovers),
                "handover": self.handover.status() if self.handover is not None else None,
                "routers": {name: {"up": v.up, "published": v.published} for name, (_, v) in self.routers.items()}}
