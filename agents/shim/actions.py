"""What the sans-IO engines hand back: packets to send and events to record."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

Address = ipaddress.IPv6Address


@dataclass(frozen=True)
class Send:
    """Put ``message`` on the wire as IP protocol 140 from ``src`` to ``dst``."""

    src: Address
    dst: Address
    message: Any


@dataclass(frozen=True)
class Event:
    """Something a user may want to see in ``shimctl events`` (JSON-friendly detail)."""

    time: float
    kind: str
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"time": round(self.time, 3), "kind": self.kind, **self.detail}


@dataclass(frozen=True)
class IcmpError:
    """Answer a packet with an ICMPv6 error (RFC 4443) from ``src`` to ``dst``.

    ``invoking`` is the offending packet after its IPv6 header (the daemon puts the header back);
    ``pointer`` counts octets from the start of that IPv6 header, as RFC 4443 section 3.4 says.
    """

    src: Address
    dst: Address
    type: int
    code: int
    pointer: int
    invoking: bytes


Action = Send | Event | IcmpError
