"""The decision engine of the deprecation agent, sans I/O: facts in, prefix states out.

One engine runs on each router of the site that watches an ISP (an exit router) or tells hosts about
prefixes (a router that sends Router Advertisements on a LAN), or both.  Facts:

- ``routes(now, isp, present)``  the ISP-learnt default route is in the kernel (zebra installs it only
  while the BGP session is Established; with BFD tied to BGP a silent failure drops it in ~0.3 s);
- ``probe(now, isp, ok)``        one echo to a target behind the ISP's upstream, sent from the exit's own
  address in that ISP's prefix, was answered (or timed out): it sees what BGP cannot, an upstream cut;
- ``heard(now, isp, up)``        the exit router of a remote ISP announced its verdict;
- ``tick(now)``                  time passes: a remote exit that fell silent (crashed) counts as down.

Hysteresis, so that random loss does not flap a prefix: an ISP goes down at once when its routes vanish,
or after ``down_after`` probes lost in a row; it comes back only when its routes are present, ``up_after``
probes in a row were answered and it has been down at least ``hold_down`` seconds.  With 5 % loss each way
(~10 % per echo) five losses in a row happen about once in 100 000 probes.

Until an ISP's routes have been seen once (BGP still converging after start) nothing about it counts.
Every call returns the ``Change``s it caused; ``preferred(isp)`` is the state a Router Advertisement
should carry.  No sockets, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Hysteresis:
    down_after: int = 5       # consecutive lost probes that make an ISP unusable
    up_after: int = 10        # consecutive answered probes before it is usable again
    hold_down: float = 2.0    # seconds an ISP stays down at least (no flapping on a bouncing link)
    peer_timeout: float = 0.5  # seconds without a remote exit's announcement before its ISP counts as down

    def __post_init__(self) -> None:
        if self.down_after < 1 or self.up_after < 1 or self.hold_down < 0 or self.peer_timeout <= 0:
            raise ValueError(f"invalid hysteresis {self}")


@dataclass(frozen=True)
class Change:
    at: float
    isp: str
    preferred: bool
    reason: str


@dataclass
class _Local:
    """An ISP this router is the exit to."""

    probing: bool
    up: bool = True
    routes: bool = True
    started: bool = False  # the ISP's routes were seen once: before that (BGP converging) nothing counts
    lost: int = 0
    answered: int = 0
    since: float = 0.0
    reason: str = "start"


@dataclass
class _Remote:
    """An ISP whose exit is another router: its announcements, and when the last one arrived."""

    up: bool = True
    heard_at: float | None = None
    silent: bool = False
    since: float = 0.0
    reason: str = "start"


@dataclass
class DeprecationEngine:
    local: dict[str, _Local] = field(default_factory=dict)
    remote: dict[str, _Remote] = field(default_factory=dict)
    hyst: Hysteresis = field(default_factory=Hysteresis)
    history: list[Change] = field(default_factory=list)

    @classmethod
    def create(cls, local: dict[str, bool], remote: list[str], hyst: Hysteresis | None = None,
               now: float = 0.0) -> "DeprecationEngine":
        """``local``: ISP -> whether it is probed; ``remote``: ISPs heard from their exits.  Everything
        starts usable (the exits say otherwise within a probe or two)."""
        overlap = set(local) & set(remote)
        if overlap:
            raise ValueError(f"ISP(s) {sorted(overlap)} both local and remote")
        eng = cls({i: _Local(p, since=now) for i, p in local.items()},
                  {i: _Remote(since=now, heard_at=now) for i in remote}, hyst or Hysteresis())
        return eng

    # -- facts ----------------------------------------------------------------------------------------
    def routes(self, now: float, isp: str, present: bool) -> list[Change]:
        st = self.local[isp]
        st.routes = present
        st.started = st.started or present
        if not st.started:
            return []
        if not present:
            st.answered = 0
            return self._set_local(now, isp, False, "ISP routes gone (BGP session down)")
        return self._maybe_up(now, isp)

    def probe(self, now: float, isp: str, ok: bool) -> list[Change]:
        st = self.local[isp]
        if not st.started:
            return []
        if ok:
            st.lost, st.answered = 0, st.answered + 1
            return self._maybe_up(now, isp)
        st.answered, st.lost = 0, st.lost + 1
        if st.lost >= self.hyst.down_after:
            return self._set_local(now, isp, False, f"{st.lost} probes beyond the ISP lost in a row")
        return []

    def heard(self, now: float, isp: str, up: bool, reason: str = "") -> list[Change]:
        st = self.remote.get(isp)
        if st is None:
            return []
        st.heard_at, st.silent = now, False
        return self._set_remote(now, isp, up, reason or ("announced usable" if up else "announced unusable"))

    def tick(self, now: float) -> list[Change]:
        out: list[Change] = []
        for isp, st in self.remote.items():
            if not st.silent and st.heard_at is not None and now - st.heard_at > self.hyst.peer_timeout:
                st.silent = True
                out += self._set_remote(now, isp, False, f"its exit router silent for "
                                                         f"{now - st.heard_at:.2f} s (crashed?)")
        for isp in self.local:
            out += self._maybe_up(now, isp)
        return out

    # -- state ----------------------------------------------------------------------------------------
    def preferred(self, isp: str) -> bool:
        st = self.local.get(isp) or self.remote.get(isp)
        if st is None:
            raise KeyError(isp)
        return st.up

    def local_verdicts(self) -> dict[str, tuple[bool, str]]:
        """What this router announces about the ISPs it is the exit to."""
        return {isp: (st.up, st.reason) for isp, st in self.local.items()}

    def status(self, now: float) -> dict:
        return {
            "local": {i: {"preferred": s.up, "reason": s.reason, "since": round(now - s.since, 3),
                          "routes": s.routes, "probes_lost_in_a_row": s.lost,
                          "probes_answered_in_a_row": s.answered} for i, s in self.local.items()},
            "remote": {i: {"preferred": s.up, "reason": s.reason, "since": round(now - s.since, 3),
                           "heard_ago": None if s.heard_at is None else round(now - s.heard_at, 3)}
                       for i, s in self.remote.items()},
            "changes": len(self.history),
        }

    # -- internals ------------------------------------------------------------------------------------
    def _maybe_up(self, now: float, isp: str) -> list[Change]:
        st = self.local[isp]
        if st.up or not st.routes:
            return []
        if st.probing and st.answered < self.hyst.up_after:
            return []
        if now - st.since < self.hyst.hold_down:
            return []
        why = f"routes back, {st.answered} probes answered in a row" if st.probing else "routes back"
        return self._set_local(now, isp, True, why)

    def _set_local(self, now: float, isp: str, up: bool, reason: str) -> list[Change]:
        st = self.local[isp]
        if st.up == up:
            return []
        st.up, st.since, st.reason = up, now, reason
        return self._record(Change(now, isp, up, reason))

    def _set_remote(self, now: float, isp: str, up: bool, reason: str) -> list[Change]:
        st = self.remote[isp]
        if st.up == up:
            return []
        st.up, st.since, st.reason = up, now, reason
        return self._record(Change(now, isp, up, reason))

    def _record(self, change: Change) -> list[Change]:
        self.history.append(change)
        return [change]
