"""Handing a lost router's clients to a survivor: which clients, when, through which router; the echo
backend sending the signed handover datagram; the core replacing a LeaseSet that lists a dead router
at once."""

from __future__ import annotations

from dataclasses import dataclass, field

from agents.balancer.backend import EchoBackend
from agents.balancer.core import AnswerLeaseSet, BalancerCore
from agents.balancer.datagrams import PROTO_DATAGRAM, AppPayload, RepliableDatagram
from agents.balancer.handover import HANDOVER_DATA, Handover, RouterView
from agents.balancer.keys import DestinationKeys
from agents.balancer.policy import Primary
from agents.balancer.structures import Destination, Lease

KEYS = DestinationKeys.from_seed("handover-test")
CLIENT = DestinationKeys.from_seed("handover-client")
UP, PUB, DOWN = RouterView(True, False), RouterView(True, True), RouterView(False, False)


def test_only_silent_clients_of_a_lost_router_are_nudged_through_a_published_survivor() -> None:
    h = Handover(silence_s=1.0, every_s=3.0)
    h.heard(CLIENT.destination, 4000, 5000, "r1", now=100.0)
    assert h.due(102.0, {"r1": PUB, "r2": PUB}) == []           # its router lives: just idle
    h.router_lost("r1")
    assert h.due(100.5, {"r1": DOWN, "r2": PUB}) == []          # not silent yet
    assert h.due(102.0, {"r1": DOWN, "r2": UP}) == []           # no survivor is published yet
    [nudge] = h.due(102.0, {"r1": DOWN, "r2": UP, "r3": PUB})
    assert nudge.router == "r3" and nudge.client.src_port == 4000
    assert h.due(103.0, {"r1": DOWN, "r3": PUB}) == []          # paced
    assert [n.router for n in h.due(105.0, {"r1": PUB, "r3": PUB})] == ["r3"]  # r1 restarted: no session
    h.heard(CLIENT.destination, 4000, 5000, "r3", now=106.0)    # answered through the survivor: done
    assert h.due(108.0, {"r1": DOWN, "r3": PUB}) == []
    assert h.status() == {"clients": 1, "nudges": 2}


def test_clients_silent_for_long_are_forgotten() -> None:
    h = Handover(forget_s=60.0)
    h.heard(CLIENT.destination, 1, 2, "r1", now=0.0)
    h.router_lost("r1")
    assert h.due(61.0, {"r1": DOWN, "r2": PUB}) == [] and h.clients == {}


@dataclass
class Sender:
    name: str
    sent: list[tuple[Destination, bytes]] = field(default_factory=list)
    lookups: list[Destination] = field(default_factory=list)

    def send_payload(self, to: Destination, payload: bytes) -> None:
        self.sent.append((to, payload))

    def prefetch(self, destination: Destination) -> None:
        self.lookups.append(destination)


def request(seq: int) -> bytes:
    return AppPayload(PROTO_DATAGRAM, 4000, 5000, RepliableDatagram.signed_by(CLIENT, b"probe %d" % seq).to_bytes()).to_bytes()


def _a_client_heard_through_r1() -> tuple[list[float], EchoBackend, Sender, Sender]:
    """A backend with r1 published and r2 up but unpublished, after a client's request came in by r1."""
    clock = [10.0]
    backend = EchoBackend(KEYS, clock=lambda: clock[0])
    r1, r2 = Sender("r1"), Sender("r2")
    backend.router_state(r1, True, True)
    backend.router_state(r2, True, False)
    backend.deliver(r1, request(1))
    return clock, backend, r1, r2


def test_echo_backend_sends_a_signed_handover_datagram_via_the_survivor() -> None:
    clock, backend, r1, r2 = _a_client_heard_through_r1()
    assert len(r1.sent) == 1 and backend.replied["r1"] == 1
    backend.router_state(r1, False, False)
    clock[0] = 12.0
    backend.tick()
    assert r2.sent == []                                 # r2's leases are not published yet
    backend.router_state(r2, True, True)
    backend.tick()
    [(to, payload)] = r2.sent
    app = AppPayload.from_bytes(payload)
    dgram = RepliableDatagram.from_bytes(app.data)
    assert to == CLIENT.destination and (app.src_port, app.dst_port) == (5000, 4000)
    assert dgram.data == HANDOVER_DATA and dgram.verify() and dgram.sender == KEYS.destination
    assert backend.status()["handovers"] == {"r2": 1}


def test_other_routers_look_a_client_up_in_advance() -> None:
    h = Handover(prefetch_every_s=60.0)
    h.heard(CLIENT.destination, 1, 2, "r1", now=0.0)
    views = {"r1": PUB, "r2": UP, "r3": DOWN}
    assert [a.router for a in h.prefetch_due(0.5, views)] == ["r2"]   # not its own router, not a dead one
    assert h.prefetch_due(30.0, views) == []                            # paced
    assert [a.router for a in h.prefetch_due(61.0, {**views, "r3": UP})] == ["r2", "r3"]
    h.router_up("r2")                                                   # restarted: its cache is empty
    assert [a.router for a in h.prefetch_due(62.0, views)] == ["r2"]


def test_echo_backend_has_survivors_cache_the_clients_leaseset() -> None:
    clock, backend, r1, r2 = _a_client_heard_through_r1()
    backend.tick()
    assert r2.lookups == [CLIENT.destination] and r1.lookups == []
    backend.router_state(r2, False, False)
    backend.router_state(r2, True, False)                              # back up: asked again at once
    backend.tick()
    assert r2.lookups == [CLIENT.destination] * 2


def test_backend_without_handover_never_nudges() -> None:
    backend = EchoBackend(KEYS, handover=None, clock=lambda: 50.0)
    r1, r2 = Sender("r1"), Sender("r2")
    backend.router_state(r2, True, True)
    backend.deliver(r1, request(1))
    backend.router_state(r1, False, False)
    backend.tick()
    assert r2.sent == []


def test_core_replaces_a_leaseset_listing_a_dead_router_within_min_interval() -> None:
    core = BalancerCore(build=KEYS.lease_set, policy=Primary(), min_interval=20.0)
    now = 1_800_000_000.0
    for name, gw in (("r1", 1), ("r2", 2)):
        core.router_up(name, now)
        core.leases_requested(name, [Lease(bytes([gw]) * 32, 7, int(now + 600) * 1000)], now)
    assert core.current is not None and {x.gateway[0] for x in core.current.leases} == {1}
    actions = core.router_down("r1", now + 5)             # 5 s after the last build
    assert {x.gateway[0] for x in core.current.leases} == {2}
    assert [a.router for a in actions if isinstance(a, AnswerLeaseSet)] == ["r2"]
    # a standby's loss does not touch the published LeaseSet, so min_interval still holds
    core.router_up("r3", now + 6)
    core.leases_requested("r3", [Lease(bytes([3]) * 32, 7, int(now + 600) * 1000)], now + 6)
    published = core.current.published
    core.router_down("r3", now + 7)
    assert core.current.published == published


def test_a_restarted_balancer_keeps_the_router_that_carried_the_leaseset() -> None:
    """Frontends of a restarted balancer reconnect one by one; the one whose router carried the published
    LeaseSet (clients' sessions are there) says so, and the new balancer, holding its first LeaseSet for a
    moment, publishes that router's leases, not the first by name."""
    now = 1_800_000_000.0
    core = BalancerCore(build=KEYS.lease_set, policy=Primary(), min_interval=20.0, hold_until=now + 2)
    core.router_up("r1", now)
    assert core.leases_requested("r1", [Lease(bytes([1]) * 32, 7, int(now + 600) * 1000)], now) == []
    assert core.current is None and core.next_deadline() == now + 2  # held: r2 may still come
    core.router_up("r2", now + 1, carried=True)
    core.leases_requested("r2", [Lease(bytes([2]) * 32, 7, int(now + 600) * 1000)], now + 1)
    actions = core.tick(now + 2)
    assert {x.gateway[0] for x in core.current.leases} == {2}
    assert sorted(a.router for a in actions if isinstance(a, AnswerLeaseSet)) == ["r1", "r2"]
    core.tick(now + 30)  # and it stays with r2 (primary), though r1 sorts first
    assert {x.gateway[0] for x in core.current.leases} == {2}
