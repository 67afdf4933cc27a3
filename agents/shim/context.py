"""One shim context: the state both ends keep for a ULID pair (RFC 5533 section 6).

States follow RFC 5533 6.2 (I1-SENT, I2-SENT, I2BIS-SENT, ESTABLISHED, E-FAILED,
NO-SUPPORT).  A context carries the handshake's nonces and retransmission counter, the
peer's proven locator set, the locator-pair table (thesis fig. 21), REAP's state and any
Update Request still waiting for its acknowledgement.
"""

from __future__ import annotations

import enum
import ipaddress
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .identity import PeerLocators
from .pairs import PairTable
from .reapstate import ReapState

Address = ipaddress.IPv6Address


class ContextState(str, enum.Enum):
    I1_SENT = "i1-sent"
    I2_SENT = "i2-sent"
    I2BIS_SENT = "i2bis-sent"
    ESTABLISHED = "established"
    E_FAILED = "e-failed"
    NO_SUPPORT = "no-support"


@dataclass
class Retransmission:
    """A control message waiting for its answer: what, how often, until when."""

    message: Any
    src: Address
    dst: Address
    deadline: float
    attempt: int = 0


@dataclass
class Context:
    local_ulid: Address
    peer_ulid: Address
    local_tag: int
    state: ContextState
    initiator: bool
    created: float
    last_activity: float
    peer_tag: int | None = None
    initiator_nonce: int = 0
    responder_nonce: int = 0
    validator: bytes = b""
    peer: PeerLocators | None = None
    pairs: PairTable | None = None
    reap: ReapState = field(default_factory=ReapState)
    local_generation: int = 0
    pending: Retransmission | None = None
    update_nonce: int | None = None
    confirmed: set[tuple[Address, Address]] = field(default_factory=set)  # pairs a probe exchange proved
    # responder nonces of the I2/I2bis this ULID pair accepted (a repeat proves nothing new); validators
    # last two lifetimes, so a few recent ones are all a replay can use
    responder_nonces: deque = field(default_factory=lambda: deque(maxlen=8))

    def as_dict(self) -> dict[str, object]:
        preferred = self.pairs.preferred if self.pairs else None
        return {
            "local_ulid": str(self.local_ulid),
            "peer_ulid": str(self.peer_ulid),
            "state": self.state.value,
            "role": "initiator" if self.initiator else "responder",
            "local_context_tag": f"{self.local_tag:#014x}",
            "peer_context_tag": None if self.peer_tag is None else f"{self.peer_tag:#014x}",
            "reap": self.reap.mode_name,
            "preferred_pair": None if preferred is None else [str(preferred.local), str(preferred.remote)],
            "peer_locators": None if self.peer is None else self.peer.as_dict(),
            "local_generation": self.local_generation,
            "age": round(self.last_activity - self.created, 3),
        }
