"""REAP's per-context state (RFC 5534 section 5): what a context holds and ``reap`` updates.

A leaf module: the context embeds a ``ReapState`` and REAP's functions take a context, so the
state lives apart from both.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from dataclasses import dataclass, field

from . import messages as m

Address = ipaddress.IPv6Address
MAX_REPORTS = 15
MODE_NAMES = {m.REAP_OPERATIONAL: "operational", m.REAP_EXPLORING: "exploring", m.REAP_INBOUND_OK: "inbound-ok"}


@dataclass
class ReapState:
    mode: int = m.REAP_OPERATIONAL
    last_rx: float | None = None
    last_tx: float | None = None
    send_deadline: float | None = None
    keepalive_deadline: float | None = None
    round: int = 0
    round_deadline: float | None = None
    in_flight: dict[int, tuple[Address, Address]] = field(default_factory=dict)
    tried: set[tuple[Address, Address]] = field(default_factory=set)
    sent_reports: deque = field(default_factory=lambda: deque(maxlen=MAX_REPORTS))
    received_reports: deque = field(default_factory=lambda: deque(maxlen=MAX_REPORTS))
    peer_keepalive_timeout: float | None = None
    settling: dict[int, tuple[Address, Address]] = field(default_factory=dict)
    settle_deadline: float | None = None
    keep: tuple[Address, Address] | None = None  # verifying the pair in use (upper-layer suspicion)
    keep_sent: float = 0.0
    held: tuple[Address, Address] | None = None  # an alternative that answered while we wait for ``keep``
    hold_deadline: float | None = None
    kept_at: float = float("-inf")
    cause: str = ""  # what started the exploration under way ("" when operational)
    explored_from: tuple[Address, Address] | None = None  # the pair in use when it started

    @property
    def mode_name(self) -> str:
        return MODE_NAMES[self.mode]

    def deadlines(self) -> list[float]:
        return [d for d in (self.send_deadline, self.keepalive_deadline, self.round_deadline,
                            self.settle_deadline, self.hold_deadline) if d is not None]
