"""The exit path cache (thesis 6.3.1.2) as a sans-IO engine: facts in, actions and deadlines out.

The cache holds, per destination address, the source address to use and a lifetime.  Inputs are
method calls with the current time; outputs are actions for the daemon to carry out on the kernel:

- ``received(now, sa, da)``: a packet from ``sa`` to our address ``da`` arrived (the thesis's
  entry-creation process).  An entry for ``sa`` whose source is ``da`` gets its lifetime extended;
  one with another source is updated to ``da`` (and extended), unless it is still locked; without
  an entry, a new one ``sa -> da`` is created and locked for ``timing.lock`` seconds, so that the
  replies to the other copies of the initial packet, arriving just after, do not change it.  When
  a race was pending for ``sa`` this is step 4: the first reply chose the source.
- ``race_started(now, dst, src)``: the kernel found no entry for ``dst`` and sent the initial
  packet once per source address (step 3); the engine starts the timer of step 3.
- ``tick(now)``: step 5 (a race without any reply after ``timing.probe_timeout``: the last source
  used with that destination, even from an expired entry, else a random one, becomes the entry's
  source) and expiry of entries (the last source is kept in ``history`` for step 5).
- ``lookup(now, dst)``: steps 1 and 2 (the source for a destination, or None).

Actions: ``Program`` (put an entry in the kernel: cache map and a route hint, both carrying the
lifetime so that a dead agent's state ages out by itself), ``Withdraw`` (an entry expired),
``Decide`` (step 5: flows still racing to ``dst`` use ``src`` from now on) and ``Event``.
"""

from __future__ import annotations

import ipaddress
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

Address = ipaddress.IPv6Address


@dataclass(frozen=True)
class Timing:
    """The thesis names these quantities without values; the defaults suit a lab (seconds)."""

    lifetime: float = 60.0       # an entry lives this long after the last packet that extended it
    lock: float = 1.0            # a new entry ignores packets to other addresses of ours this long
    probe_timeout: float = 1.5   # step 3's timer: how long a race waits for a reply
    refresh: float = 0.5         # re-program an extended entry when less than this share of its lifetime is left

    def __post_init__(self) -> None:
        for name in ("lifetime", "lock", "probe_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0 (got {getattr(self, name)})")
        if not 0 < self.refresh < 1:
            raise ValueError(f"refresh must be between 0 and 1 (got {self.refresh})")
        if self.lock >= self.lifetime:
            raise ValueError(f"lock ({self.lock} s) must be shorter than lifetime ({self.lifetime} s)")


@dataclass
class Entry:
    dst: Address
    src: Address
    created: float
    expires: float
    locked_until: float
    how: str                     # reply | inbound | timeout: what made the entry (for `exitpathctl cache`)

    def view(self, now: float) -> dict[str, Any]:
        return {"dst": str(self.dst), "src": str(self.src), "how": self.how,
                "age": round(now - self.created, 3), "expires_in": round(self.expires - now, 3),
                "locked": now < self.locked_until}


@dataclass
class Race:
    dst: Address
    src: Address                 # the source the application chose for the original packet
    started: float
    deadline: float


@dataclass(frozen=True)
class Program:
    """Make ``src`` the source for new communications to ``dst`` until ``expires`` (engine clock)."""

    dst: Address
    src: Address
    expires: float


@dataclass(frozen=True)
class Withdraw:
    dst: Address


@dataclass(frozen=True)
class Decide:
    """Step 5 for flows already on their way: those still racing to ``dst`` continue from ``src``."""

    dst: Address
    src: Address


@dataclass(frozen=True)
class Event:
    time: float
    kind: str
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"time": round(self.time, 3), "kind": self.kind, **self.detail}


Action = Program | Withdraw | Decide | Event


@dataclass
class Counters:
    races: int = 0
    won_by_reply: int = 0
    timed_out: int = 0
    created_inbound: int = 0
    updated: int = 0
    ignored_locked: int = 0
    expired: int = 0


@dataclass
class ExitPathCache:
    sources: tuple[Address, ...]
    timing: Timing = field(default_factory=Timing)
    rng: random.Random = field(default_factory=random.Random)
    entries: dict[Address, Entry] = field(default_factory=dict)
    history: dict[Address, Address] = field(default_factory=dict)
    races: dict[Address, Race] = field(default_factory=dict)
    programmed: dict[Address, float] = field(default_factory=dict)
    events: deque = field(default_factory=lambda: deque(maxlen=2000))
    counters: Counters = field(default_factory=Counters)

    def __post_init__(self) -> None:
        self.sources = tuple(Address(s) for s in self.sources)
        if not self.sources:
            raise ValueError("the exit path cache needs at least one source address")
        if len(set(self.sources)) != len(self.sources):
            raise ValueError("source addresses repeat")

    # --- helpers --------------------------------------------------------------------------

    def _event(self, now: float, kind: str, **detail: Any) -> Event:
        event = Event(now, kind, {k: str(v) if isinstance(v, Address) else v for k, v in detail.items()})
        self.events.append(event)
        return event

    def _valid(self, now: float, dst: Address) -> Entry | None:
        entry = self.entries.get(dst)
        return entry if entry is not None and now < entry.expires else None

    def _program(self, entry: Entry) -> Program:
        self.programmed[entry.dst] = entry.expires
        return Program(entry.dst, entry.src, entry.expires)

    def _create(self, now: float, dst: Address, src: Address, how: str) -> Entry:
        entry = Entry(dst, src, now, now + self.timing.lifetime, now + self.timing.lock, how)
        self.entries[dst] = entry
        self.history[dst] = src
        return entry

    def _extend(self, now: float, entry: Entry) -> list[Action]:
        entry.expires = now + self.timing.lifetime
        left = self.programmed.get(entry.dst, now) - now
        return [self._program(entry)] if left < self.timing.refresh * self.timing.lifetime else []

    # --- inputs ---------------------------------------------------------------------------

    def lookup(self, now: float, dst: Address) -> Address | None:
        """Steps 1 and 2: the cached source for ``dst``, or None (step 3 then races)."""
        entry = self._valid(now, Address(dst))
        return entry.src if entry else None

    def race_started(self, now: float, dst: Address, src: Address) -> list[Action]:
        """Step 3: the initial packet went out once per source; start the timer (one per destination)."""
        dst, src = Address(dst), Address(src)
        entry = self._valid(now, dst)
        if entry is not None:  # the kernel's copy of the entry lapsed before ours: put it back
            return [self._program(entry)]
        if dst in self.races:
            return []
        self.races[dst] = Race(dst, src, now, now + self.timing.probe_timeout)
        self.counters.races += 1
        return [self._event(now, "race", dst=dst, src=src, copies=len(self.sources))]

    def received(self, now: float, sa: Address, da: Address) -> list[Action]:
        """A packet from ``sa`` (remote) to ``da`` (one of our sources): create, extend or update."""
        sa, da = Address(sa), Address(da)
        if da not in self.sources or sa in self.sources:
            return []
        entry = self._valid(now, sa)
        if entry is None:
            race = self.races.pop(sa, None)
            entry = self._create(now, sa, da, "reply" if race else "inbound")
            if race:
                self.counters.won_by_reply += 1
                event = self._event(now, "won", dst=sa, src=da, after_ms=round((now - race.started) * 1000, 1),
                                    original=race.src)
            else:
                self.counters.created_inbound += 1
                event = self._event(now, "learned", dst=sa, src=da)
            return [self._program(entry), event]
        if entry.src == da:
            return self._extend(now, entry)
        if now < entry.locked_until:
            self.counters.ignored_locked += 1
            return []
        old, entry.src = entry.src, da
        self.history[sa] = da
        self.counters.updated += 1
        entry.expires = now + self.timing.lifetime
        return [self._program(entry), self._event(now, "updated", dst=sa, src=da, was=old)]

    def tick(self, now: float) -> list[Action]:
        """Step 5 for races whose timer ran out; expiry of entries."""
        actions: list[Action] = []
        for dst, race in list(self.races.items()):
            if now < race.deadline:
                continue
            del self.races[dst]
            last = self.history.get(dst)
            src = last if last in self.sources else self.rng.choice(self.sources)
            entry = self._create(now, dst, src, "timeout")
            self.counters.timed_out += 1
            actions += [self._program(entry), Decide(dst, src),
                        self._event(now, "timeout", dst=dst, src=src, chose="last-used" if last == src else "random")]
        for dst, entry in list(self.entries.items()):
            if now >= entry.expires:
                del self.entries[dst]
                self.programmed.pop(dst, None)
                self.counters.expired += 1
                actions += [Withdraw(dst), self._event(now, "expired", dst=dst, src=entry.src)]
        return actions

    def deprecated(self, now: float, src: Address) -> list[Action]:
        """One of our sources became deprecated (6.3.1.2.1: the site says its ISP is unusable): entries that
        use it are dropped, so the next connection to those destinations races again (and the kernel's
        own choice avoids the deprecated source); step 5 will not fall back on it either."""
        src = Address(src)
        actions: list[Action] = []
        for dst, entry in list(self.entries.items()):
            if entry.src == src:
                del self.entries[dst]
                self.programmed.pop(dst, None)
                if self.history.get(dst) == src:
                    del self.history[dst]
                self.counters.expired += 1
                actions += [Withdraw(dst), self._event(now, "deprecated", dst=dst, src=src)]
        return actions

    def next_deadline(self) -> float | None:
        times = [r.deadline for r in self.races.values()] + [e.expires for e in self.entries.values()]
        return min(times) if times else None

    # --- views ----------------------------------------------------------------------------

    def cache_view(self, now: float) -> list[dict[str, Any]]:
        return [e.view(now) for e in sorted(self.entries.values(), key=lambda e: str(e.dst)) if now < e.expires]

    def status(self, now: float) -> dict[str, Any]:
        return {"sources": [str(s) for s in self.sources], "timing": vars(self.timing).copy(),
                "entries": sum(1 for e in self.entries.values() if now < e.expires),
                "racing": sorted(str(d) for d in self.races), "counters": vars(self.counters).copy()}

    def events_view(self, since: float | None = None) -> list[dict[str, Any]]:
        return [e.as_dict() for e in self.events if since is None or e.time > since]
