"""Moving a client's end-to-end session to a surviving router after the one that held it dies.

With ECIES-X25519-AEAD-Ratchet, the session a client opened with the Destination lives only in the
hosting router that answered its New Session message. After that router dies the client's i2pd keeps
sending Existing Session messages that no survivor can decrypt, and it does not give that session up
for 10 minutes (i2pd 2.45.1: a DatagramSession keeps its routing session until it is terminated;
``ECIESX25519_RECEIVE_EXPIRATION_TIMEOUT`` 600 s).

What stock routers do allow: a survivor *sending* to the client opens a new session from the same
Destination key (New Session, with the survivor's LeaseSet attached). The client's i2pd replaces its
old session with it when the old one is older than 120 s (``ECIESX25519_RESTART_TIMEOUT``;
``GarlicDestination::AddECIESx25519Session``), terminates the old one, and its next message goes
through the new session, to a lease of the attached (current) LeaseSet. So the backend remembers the
clients it answered and through which router; when that router is lost and the client falls silent,
it sends the client a small datagram through a live router whose leases are published, again every
``every_s`` until the client is heard (a session younger than 120 s is not replaced yet).

To send it, the survivor needs the client's LeaseSet. Looked up only after the crash, the lookup's
reply comes back through the survivor's inbound tunnels, some of which went through the router that
just died, and takes tens of seconds (measured: still pending 20 s after the crash). So every other
live router is asked to look the client up in advance (:meth:`Handover.prefetch_due`, an I2CP
HostLookup; i2pd keeps the answer in that router's cache), when the client is first heard, every
``prefetch_every_s`` and when a router comes up. Sans-IO: time is passed in, the caller does the sending.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from .structures import Destination

HANDOVER_DATA = b"handover"


@dataclass
class Client:
    destination: Destination
    src_port: int
    dst_port: int
    router: str
    last_heard: float
    last_nudge: float | None = None
    nudges: int = 0
    orphaned: bool = False


@dataclass(frozen=True)
class RouterView:
    up: bool
    published: bool


@dataclass(frozen=True)
class Nudge:
    """Send the handover datagram to ``client`` through ``router``."""

    client: Client
    router: str


@dataclass
class Handover:
    """Which silent clients of lost routers to nudge, through which router.

    ``silence_s``: how long such a client must have been silent; ``every_s``: between two nudges of
    the same client; ``forget_s``: silent clients older than this are dropped (they left)."""

    silence_s: float = 1.0
    every_s: float = 3.0
    forget_s: float = 180.0
    prefetch_every_s: float = 60.0
    clients: dict[bytes, Client] = field(default_factory=dict)
    prefetched: dict[tuple[bytes, str], float] = field(default_factory=dict)  # (client, router) -> when

    def heard(self, destination: Destination, src_port: int, dst_port: int, router: str, now: float) -> None:
        key = destination.to_bytes()
        client = self.clients.get(key)
        if client is None:
            self.clients[key] = Client(destination, src_port, dst_port, router, now)
            return
        client.src_port, client.dst_port, client.router, client.last_heard = src_port, dst_port, router, now
        client.last_nudge, client.orphaned = None, False

    def router_lost(self, router: str) -> None:
        """The router's session state is gone (also when it comes back: a restarted router has none),
        so its clients need a new session until they are heard again."""
        for client in self.clients.values():
            if client.router == router:
                client.orphaned = True

    def due(self, now: float, routers: Mapping[str, RouterView]) -> list[Nudge]:
        for key in [k for k, c in self.clients.items() if now - c.last_heard > self.forget_s]:
            del self.clients[key]
        nudges = []
        for client in self.clients.values():
            if not client.orphaned or now - client.last_heard < self.silence_s:
                continue
            if client.last_nudge is not None and now - client.last_nudge < self.every_s:
                continue
            router = self.via(client, routers)
            if router is not None:
                client.last_nudge, client.nudges = now, client.nudges + 1
                nudges.append(Nudge(client, router))
        return nudges

    def prefetch_due(self, now: float, routers: Mapping[str, RouterView]) -> list[Nudge]:
        """Which live routers should look up which clients' LeaseSets now (all but the client's own)."""
        due = []
        for key, client in self.clients.items():
            for name, view in sorted(routers.items()):
                if not view.up or name == client.router:
                    continue
                if now - self.prefetched.get((key, name), -self.prefetch_every_s) >= self.prefetch_every_s:
                    self.prefetched[(key, name)] = now
                    due.append(Nudge(client, name))
        self.prefetched = {k: t for k, t in self.prefetched.items() if k[0] in self.clients}
        return due

    def router_up(self, router: str) -> None:
        """A router (back) up has an empty cache: it looks every client up again."""
        self.prefetched = {k: t for k, t in self.prefetched.items() if k[1] != router}

    @staticmethod
    def via(client: Client, routers: Mapping[str, RouterView]) -> str | None:
        """One live router whose leases are published (only one: the first New Session the client
        takes wins for 120 s). None until there is one: a survivor attaches its LeaseSet to the New
        Session, and the client will send to a lease of that LeaseSet."""
        ready = sorted(name for name, view in routers.items() if view.up and view.published and name != client.router)
        return ready[0] if ready else None

    def status(self) -> dict[str, object]:
        return {"clients": len(self.clients), "nudges": sum(c.nudges for c in self.clients.values())}
