"""The balancer's decisions, with no I/O and no clock of its own (time is passed in).

Events come from the frontends (a router's session is up, it asked for a LeaseSet with these
leases, it is gone, time passed); the core answers with actions (hand this LeaseSet to that
router, make that router publish or not). Rules, from Proposal 140 and what i2pd 2.45.1 enforces:

* every RequestVariableLeaseSet is answered at once (i2pd drops a session after 10 s);
* ONE LeaseSet2 of at most 16 leases is built from all routers' leases (see :mod:`.policy`) and
  handed to every live router, so each one's local LeaseSet is the merged one;
* a new LeaseSet is built when the selected tunnels change, at most once per ``min_interval``
  (i2pd publishes at most every 20 s), with ``published`` strictly newer than the last one
  (floodfills keep only strictly newer LeaseSets);
* only ``publish_count`` routers publish (chosen from ``preferred_publishers`` first); the
  others run with ``i2cp.dontPublishLeaseSet=true``; a lost publisher is replaced;
* a lost router's leases are dropped at once (and a LeaseSet that listed them is replaced at once,
  even within ``min_interval``), expired leases at the next tick;
* so are the other routers' leases whose inbound gateway is the lost router (when its frontend
  told its identity hash): those tunnels died with it, but their routers keep offering them until
  their tunnel tests fail, tens of seconds later. A client whose end-to-end session moves to a
  survivor picks a lease of the LeaseSet attached to that survivor's New Session; a dead one loses
  its New Session Replies, and after 12 of them (``ECIESX25519_NSR_NUM_GENERATED_TAGS``) the
  survivor cannot read that client any more (docs/i2p-proposal-140.md). Tunnels that went through
  a router before it restarted stay excluded after it is back (its transit tunnels are gone);
* for ``reannounce_for`` seconds after a router is lost or comes back up, the same leases are handed
  again every ``reannounce_every`` seconds, under a newer ``published``, to the routers whose leases
  they are (a *re-announcement*; a publishing standby keeps its copy, so floodfills see no more). i2pd 2.45.1
  keeps the path (outbound tunnel, client lease) of each session for 30 s or 100 messages
  (``ROUTING_PATH_EXPIRATION_TIMEOUT``), and I2CP datagrams carry no acknowledgement, so a router
  answering a client through a lease that just died loses every answer until then. A session that
  a handover opened moments ago accepts only 24 + n/4 tags beyond the last one it read (n: messages
  read, ``ECIESX25519_MIN_NUM_GENERATED_TAGS``); once more answers than that are lost, the client
  cannot read that router at all any more (``Can't handle ECIES-X25519-AEAD-Ratchet message``) until
  its session is replaced. A router given a new LeaseSet attaches it to its next message in every
  session, with an acknowledgement request; when the acknowledgement has not come back 4 s later
  (``LEASET_CONFIRMATION_TIMEOUT``), it drops that session's path and picks another lease. So
  re-announcements bound a dead path to about ``reannounce_every`` + 4 s while the sessions are young.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

from .policy import fair_share, lease_key
from .structures import Lease, Lease2, LeaseSet2

LeaseSetBuilder = Callable[[tuple[Lease2, ...], int], LeaseSet2]
Policy = Callable[[dict[str, tuple[Lease2, ...]], int], tuple[Lease2, ...]]

PUBLISH_MIN_INTERVAL = 20.0


@dataclass(frozen=True)
class AnswerLeaseSet:
    """Send CreateLeaseSet2 with this LeaseSet to ``router``."""

    router: str
    lease_set: LeaseSet2


@dataclass(frozen=True)
class SetPublishing:
    """ReconfigureSession ``router`` with ``i2cp.dontPublishLeaseSet = not publish``."""

    router: str
    publish: bool


Action = AnswerLeaseSet | SetPublishing


@dataclass
class RouterState:
    up: bool = False
    publishing: bool = False
    leases: tuple[Lease2, ...] = ()
    requests: int = 0
    answers: int = 0
    sessions: int = 0
    identity: bytes | None = None  # the router's identity hash, when its frontend knows it
    carried: bool = False  # its leases were in the LeaseSet the routers held when this balancer started


@dataclass
class BalancerCore:
    """State of one multihomed Destination across its hosting routers."""

    build: LeaseSetBuilder
    preferred_publishers: Sequence[str] = ()
    publish_count: int = 1
    min_interval: float = PUBLISH_MIN_INTERVAL
    policy: Policy = fair_share
    routers: dict[str, RouterState] = field(default_factory=dict)
    current: LeaseSet2 | None = None
    last_build_at: float | None = None
    publications: int = 0
    pending: bool = False
    dead: set[tuple[bytes, int]] = field(default_factory=set)  # tunnels through a router when it was lost
    # a balancer process that may have started again builds nothing before this time: its frontends
    # reconnect within a second or so, each saying whether its router carried the published LeaseSet
    hold_until: float | None = None
    reannounce_every: float | None = None  # seconds between re-announcements (None: never); see the module doc
    reannounce_for: float = 180.0
    reannounce_until: float | None = None
    reannouncements: int = 0

    # -- events ---------------------------------------------------------------------------------

    def router_up(self, router: str, now: float, identity: bytes | None = None, carried: bool = False) -> list[Action]:
        state = self.routers.setdefault(router, RouterState())
        state.up, state.leases, state.publishing = True, (), False
        state.sessions += 1
        state.identity = identity or state.identity
        state.carried = carried
        if state.sessions > 1:  # a router that comes back (its first session is the bring-up: no clients yet)
            self._unsettle(now)
        return self._choose_publishers()

    def router_down(self, router: str, now: float) -> list[Action]:
        state = self.routers.setdefault(router, RouterState())
        lost = {lease_key(x) for x in state.leases}
        if state.identity is not None:  # the other routers' tunnels through it died with it
            through = {lease_key(x) for s in self.routers.values() for x in s.leases if x.gateway == state.identity}
            self.dead |= through
            lost |= through
        state.up, state.leases, state.publishing = False, (), False
        self._unsettle(now)
        # A LeaseSet that points at a dead router is replaced at once, whatever min_interval says: the
        # survivors attach it to what they send (the handover to them depends on it), and i2pd paces
        # its own floodfill publications anyway.
        urgent = self.current is not None and any(lease_key(x) in lost for x in self.current.leases)
        refresh = self._refresh(now, requester=None, urgent=urgent)  # publishers follow the new LeaseSet
        return self._choose_publishers() + refresh

    def leases_requested(self, router: str, leases: Sequence[Lease], now: float) -> list[Action]:
        state = self.routers.setdefault(router, RouterState())
        if not state.up:
            state.up = True
            state.sessions += 1
        state.requests += 1
        state.leases = tuple(Lease2.from_lease(lease) for lease in leases)
        return self._choose_publishers() + self._refresh(now, requester=router)

    def tick(self, now: float) -> list[Action]:
        for state in self.routers.values():
            state.leases = tuple(lease for lease in state.leases if lease.end_s > int(now))
        offered = {lease_key(x) for s in self.routers.values() for x in s.leases}
        self.dead &= offered  # a dead tunnel no router offers any more is forgotten
        return self._refresh(now, requester=None) or self._reannounce_due(now)

    def next_deadline(self) -> float | None:
        """When :meth:`tick` must run next for a deferred publication or a re-announcement (None: nothing waits)."""
        if self.pending and self.current is None and self.hold_until is not None:
            return self.hold_until
        if self.pending and self.last_build_at is not None:
            return self.last_build_at + self.min_interval
        if self.reannounce_until is not None and self.last_build_at is not None and self.reannounce_every:
            return min(self.last_build_at + self.reannounce_every, self.reannounce_until)
        return None

    # -- decisions ------------------------------------------------------------------------------

    def selection(self, now: float) -> tuple[Lease2, ...]:
        down = {s.identity for s in self.routers.values() if not s.up and s.identity is not None}
        live = {name: tuple(x for x in s.leases if x.gateway not in down and lease_key(x) not in self.dead)
                for name, s in self.routers.items() if s.up}
        if self.current is None:  # a balancer that started again: first the routers that carried the old
            carriers = {n: x for n, x in live.items() if x and self.routers[n].carried}  # LeaseSet (clients'
            live = carriers or live  # sessions are there; `primary` then stays with that router)
        return self.policy(live, int(now))

    def _refresh(self, now: float, requester: str | None, urgent: bool = False) -> list[Action]:
        chosen = self.selection(now)
        changed = self.current is None or {lease_key(x) for x in chosen} != {
            lease_key(x) for x in self.current.leases
        }
        # Never build an empty LeaseSet unless a router is waiting for an answer and there is
        # nothing else to give it (an empty one would also hold back the real one for 20 s).
        must_answer = self.current is None and requester is not None
        self.pending = changed and (bool(chosen) or must_answer)
        allowed = urgent or self.last_build_at is None or now - self.last_build_at >= self.min_interval
        if self.current is None and self.hold_until is not None and now < self.hold_until:
            allowed = False
        if self.pending and allowed and self._live():
            return self._build_and_hand_out(chosen, now)
        if requester is not None and self.current is not None:
            return [self._answer(requester, self.current)]
        return []

    def _unsettle(self, now: float) -> None:
        # Before any LeaseSet was handed out (by this balancer, or by the one before it when a router says
        # it carried one) no client has a session with the Destination: nothing to re-announce.  A lab's
        # bootstrap restarts every i2pd once, which looks like a loss and a return.
        if self.current is None and not any(s.carried for s in self.routers.values()):
            return
        if self.reannounce_every:
            self.reannounce_until = now + self.reannounce_for

    def _reannouncing(self, now: float | None) -> bool:
        return (self.reannounce_every is not None and self.reannounce_every > 0 and self.current is not None
                and now is not None and self.reannounce_until is not None and now < self.reannounce_until)

    def _reannounce_due(self, now: float) -> list[Action]:
        """The same leases again under a newer ``published``, while the routers' sessions are young."""
        if self.reannounce_until is not None and now >= self.reannounce_until:
            self.reannounce_until = None  # the window is over: no deadline any more
        if not self._reannouncing(now) or self.pending or self.current is None or self.last_build_at is None:
            return []
        if now - self.last_build_at < (self.reannounce_every or 0) or not self._live():
            return []
        # only the routers whose leases are published hold client sessions; the others (a publishing
        # standby under `primary`) keep the older copy, so the floodfills are not sent one every 20 s
        published = {lease_key(x) for x in self.current.leases}
        carriers = [n for n in self._live() if published & {lease_key(x) for x in self.routers[n].leases}]
        if not carriers:
            return []
        self.reannouncements += 1
        return self._build_and_hand_out(self.current.leases, now, to=carriers, new_content=False)

    def _build_and_hand_out(self, chosen: tuple[Lease2, ...], now: float, to: Sequence[str] | None = None,
                            new_content: bool = True) -> list[Action]:
        published = int(now)
        if self.current is not None and published <= self.current.published:
            published = self.current.published + 1
        self.current = self.build(chosen, published)
        for state in self.routers.values():  # from now on the policy's own memory decides
            state.carried = False
        self.last_build_at = now
        self.publications += new_content
        self.pending = False
        answers = [self._answer(name, self.current) for name in (self._live() if to is None else to)]
        return self._choose_publishers() + answers  # a new publisher is told before it is given the LeaseSet

    def _answer(self, router: str, lease_set: LeaseSet2) -> AnswerLeaseSet:
        self.routers[router].answers += 1
        return AnswerLeaseSet(router, lease_set)

    def _live(self) -> list[str]:
        return sorted(name for name, s in self.routers.items() if s.up)

    def _choose_publishers(self) -> list[Action]:
        """The routers whose leases are published publish first (preferred ones first among them). Under
        `primary` the carrier is then the publisher: when it dies, a standby that has never published takes
        over and publishes at once. A standby that publishes the carrier's leases has handed its router a
        LeaseSet at every change (i2pd submits each one it is given), so after the carrier's death i2pd holds
        its new LeaseSet back for up to 20 s (``PUBLISH_MIN_INTERVAL``): the floodfill keeps the dead
        router's leases, and clients looking it up in that time are sent there."""
        live = self._live()
        order = [r for r in self.preferred_publishers if r in live] + [r for r in live if r not in self.preferred_publishers]
        if self.current is not None:
            published = {lease_key(x) for x in self.current.leases}
            order.sort(key=lambda r: not published & {lease_key(x) for x in self.routers[r].leases})
        wanted = set(order[: self.publish_count])
        actions: list[Action] = []
        for name in order:
            state = self.routers[name]
            if state.publishing != (name in wanted):
                state.publishing = name in wanted
                actions.append(SetPublishing(name, state.publishing))
        return actions

    # -- observation ----------------------------------------------------------------------------

    def status(self) -> dict[str, object]:
        """JSON-ready state for the control socket and tests."""
        current = self.current
        return {
            "publications": self.publications,
            "pending": self.pending,
            "dead_tunnels": len(self.dead),
            "reannouncements": self.reannouncements,
            "current": None
            if current is None
            else {
                "published": current.published,
                "expires": current.expires,
                "leases": [_lease_json(lease) for lease in current.leases],
            },
            "routers": {
                name: {
                    "up": s.up,
                    "publishing": s.publishing,
                    "leases": [_lease_json(lease) for lease in s.leases],
                    "requests": s.requests,
                    "answers": s.answers,
                    "sessions": s.sessions,
                    "identity": s.identity.hex() if s.identity is not None else None,
                }
                for name, s in sorted(self.routers.items())
            },
        }


def _lease_json(lease: Lease2) -> dict[str, object]:
    return {"gateway": lease.gateway.hex(), "tunnel_id": lease.tunnel_id, "end": lease.end_s}
