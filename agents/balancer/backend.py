"""The shared backend: the application behind the multihomed Destination.

Frontends hand it every incoming message, whichever router it arrived at. This one is an echo
service for repliable datagrams (what a SAM DATAGRAM client sends): it answers through the
frontend that received the request, signed as the Destination, ports swapped. It counts what it
saw per router so a scenario can tell which router carried the traffic.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from .datagrams import PROTO_DATAGRAM, AppPayload, RepliableDatagram
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
        answer = RepliableDatagram.signed_by(self.keys, request.data)
        reply = AppPayload(PROTO_DATAGRAM, app.dst_port, app.src_port, answer.to_bytes())
        via.send_payload(request.sender, reply.to_bytes())
        self.replied[via.name] += 1

    def status(self) -> dict[str, object]:
        return {"received": dict(self.received), "replied": dict(self.replied), "rejected": dict(self.rejected)}
