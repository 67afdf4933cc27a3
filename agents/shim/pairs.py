"""The thesis's locator-pair state machine (fig. 21, section 6.4.3.5), as an explicit table.

Each (local locator, remote locator) pair is reachable, unreachable, indeterminate or under
test; at most one pair is *preferred* (the one packets are sent with).  ``TRANSITIONS`` is the
figure: for every state, which events move the pair where.  Events that the figure does not
list for a state leave it unchanged.  Two causes pin a pair unreachable "for an indefinite
time" (a local interface down, a deprecated prefix): while pinned, Ti and received packets
do not release it, only the matching repair event does.

One change to the figure: a received packet proves a pair *inbound* only.  A pair under test
or found unreachable is not made reachable by it (a pair whose source can no longer leave the
site still receives: measured when ISP A1's router lost its ISP link, packets to the A1
address kept arriving while nothing from it got out); rx moves an
unreachable pair to indeterminate (worth probing) and only a probe exchange (test-ok) makes it
reachable.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass, field

Address = ipaddress.IPv6Address


class PairState(str, enum.Enum):
    REACHABLE = "reachable"
    UNREACHABLE = "unreachable"
    INDETERMINATE = "indeterminate"
    TEST = "test"


class PairEvent(str, enum.Enum):
    RX = "rx"  # a packet arrived with this pair
    ULP_ACK = "ulp-ack"  # positive feedback from TCP or another upper layer
    SILENT_IDLE = "silent-idle"  # T seconds without rx, and nothing to send
    SILENT_SENDING = "silent-sending"  # T seconds without rx while sending
    TEST_START = "test-start"  # a reachability test (REAP probe) was sent on it
    TEST_OK = "test-ok"
    TEST_FAIL = "test-fail"
    TI_EXPIRED = "ti-expired"  # unreachable for Ti seconds
    LOCAL_DOWN = "local-down"  # local interface of the local locator failed
    LOCAL_UP = "local-up"
    PREFIX_DEPRECATED = "prefix-deprecated"
    PREFIX_VALID = "prefix-valid"
    ICMP_UNREACHABLE = "icmp-unreachable"


S, E = PairState, PairEvent
TRANSITIONS: dict[PairState, dict[PairEvent, PairState]] = {
    S.REACHABLE: {
        E.RX: S.REACHABLE,
        E.ULP_ACK: S.REACHABLE,
        E.SILENT_IDLE: S.INDETERMINATE,
        E.SILENT_SENDING: S.TEST,
        E.TEST_START: S.TEST,
        E.ICMP_UNREACHABLE: S.INDETERMINATE,
        E.LOCAL_DOWN: S.UNREACHABLE,
        E.PREFIX_DEPRECATED: S.UNREACHABLE,
    },
    S.INDETERMINATE: {
        E.RX: S.REACHABLE,
        E.ULP_ACK: S.REACHABLE,
        E.SILENT_SENDING: S.TEST,
        E.TEST_START: S.TEST,
        E.LOCAL_DOWN: S.UNREACHABLE,
        E.PREFIX_DEPRECATED: S.UNREACHABLE,
    },
    S.TEST: {  # rx proves a pair inbound only: the probe under way decides (thesis: rx -> reachable)
        E.TEST_OK: S.REACHABLE,
        E.TEST_FAIL: S.UNREACHABLE,
        E.LOCAL_DOWN: S.UNREACHABLE,
        E.PREFIX_DEPRECATED: S.UNREACHABLE,
    },
    S.UNREACHABLE: {  # thesis: rx -> reachable; here rx makes it worth a probe, a probe exchange proves it
        E.RX: S.INDETERMINATE,
        E.TEST_OK: S.REACHABLE,
        E.TI_EXPIRED: S.INDETERMINATE,
        E.LOCAL_UP: S.INDETERMINATE,
        E.PREFIX_VALID: S.INDETERMINATE,
        E.LOCAL_DOWN: S.UNREACHABLE,
        E.PREFIX_DEPRECATED: S.UNREACHABLE,
    },
}
PIN_BY = {E.LOCAL_DOWN: "interface-down", E.PREFIX_DEPRECATED: "prefix-deprecated"}
RELEASED_BY = {E.LOCAL_UP: "interface-down", E.PREFIX_VALID: "prefix-deprecated"}


@dataclass
class LocatorPair:
    local: Address
    remote: Address
    state: PairState = PairState.INDETERMINATE
    preferred: bool = False
    since: float = 0.0
    pins: set[str] = field(default_factory=set)

    @property
    def key(self) -> tuple[Address, Address]:
        return (self.local, self.remote)

    def label(self) -> str:
        return ("preferred " if self.preferred else "") + self.state.value

    def as_dict(self) -> dict[str, object]:
        return {
            "local": str(self.local),
            "remote": str(self.remote),
            "state": self.state.value,
            "preferred": self.preferred,
            "since": round(self.since, 3),
            "pinned": sorted(self.pins),
        }


@dataclass(frozen=True)
class Transition:
    local: Address
    remote: Address
    event: PairEvent
    before: str
    after: str


@dataclass
class PairTable:
    """All pairs of one context, and which one is preferred."""

    pairs: dict[tuple[Address, Address], LocatorPair] = field(default_factory=dict)

    @classmethod
    def build(cls, now: float, locals_: list[Address], remotes: list[Address], preferred: tuple[Address, Address]) -> "PairTable":
        table = cls()
        table.sync(now, locals_, remotes)
        pair = table.pairs[preferred]
        pair.state, pair.preferred = PairState.REACHABLE, True
        return table

    def sync(self, now: float, locals_: list[Address], remotes: list[Address]) -> None:
        """Add pairs for new locators (indeterminate), drop pairs of vanished ones."""
        wanted = {(loc, rem) for loc in locals_ for rem in remotes}
        for key in list(self.pairs):
            if key not in wanted:
                del self.pairs[key]
        for key in sorted(wanted - set(self.pairs)):
            self.pairs[key] = LocatorPair(key[0], key[1], since=now)

    @property
    def preferred(self) -> LocatorPair | None:
        return next((p for p in self.pairs.values() if p.preferred), None)

    def fire(self, now: float, pair: LocatorPair, event: PairEvent) -> list[Transition]:
        """Apply one event to one pair, then re-elect the preferred pair if it was lost."""
        before = pair.label()
        if event in RELEASED_BY:
            if RELEASED_BY[event] not in pair.pins:
                return []
            pair.pins.discard(RELEASED_BY[event])
            if pair.pins:
                return []
        elif pair.pins and event not in PIN_BY:
            return []
        target = TRANSITIONS[pair.state].get(event)
        if target is None:
            return []
        if event in PIN_BY:
            pair.pins.add(PIN_BY[event])
        if target != pair.state:
            pair.state, pair.since = target, now
        if event is E.TEST_OK and self.preferred is None:
            pair.preferred = True
        out = [Transition(pair.local, pair.remote, event, before, pair.label())] if before != pair.label() else []
        if pair.preferred and pair.state is PairState.UNREACHABLE:
            pair.preferred = False
            out.append(Transition(pair.local, pair.remote, event, "preferred unreachable", "unreachable"))
            out += self.elect(now, event)
        return out

    def elect(self, now: float, event: PairEvent) -> list[Transition]:
        """Choose a new preferred pair: a reachable one first, else an indeterminate one."""
        for wanted in (PairState.REACHABLE, PairState.INDETERMINATE):
            for pair in self.pairs.values():
                if pair.state is wanted:
                    pair.preferred = True
                    return [Transition(pair.local, pair.remote, event, wanted.value, pair.label())]
        return []

    def prefer(self, now: float, pair: LocatorPair) -> list[Transition]:
        """Make ``pair`` the preferred one (after exploration found it working)."""
        out = []
        for other in self.pairs.values():
            if other.preferred and other is not pair:
                other.preferred = False
                out.append(Transition(other.local, other.remote, E.TEST_OK, "preferred " + other.state.value, other.label()))
        if not pair.preferred:
            before = pair.label()
            pair.preferred = True
            out.append(Transition(pair.local, pair.remote, E.TEST_OK, before, pair.label()))
        return out

    def fire_where(self, now: float, event: PairEvent, local: Address | None = None, remote: Address | None = None) -> list[Transition]:
        out: list[Transition] = []
        for pair in list(self.pairs.values()):
            if (local is None or pair.local == local) and (remote is None or pair.remote == remote):
                out += self.fire(now, pair, event)
        return out

    def expire_unreachable(self, now: float, hold: float) -> list[Transition]:
        """Ti: unreachable pairs that are not pinned go back to indeterminate."""
        out: list[Transition] = []
        for pair in self.pairs.values():
            if pair.state is PairState.UNREACHABLE and not pair.pins and now - pair.since >= hold:
                out += self.fire(now, pair, E.TI_EXPIRED)
        return out

    def candidates(self) -> list[LocatorPair]:
        """Pairs worth probing, best first: reachable, indeterminate, under test."""
        order = {PairState.REACHABLE: 0, PairState.INDETERMINATE: 1, PairState.TEST: 2}
        usable = [p for p in self.pairs.values() if p.state in order]
        return sorted(usable, key=lambda p: (order[p.state], not p.preferred))
