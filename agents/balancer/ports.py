"""The seams between the proposal's three parts: frontend (one per router), balancer, backend.

In the single-process layout these are plain objects; in the multi-process layout
:mod:`.remote` implements the same protocols over JSON lines on local sockets. Nothing else in
the package cares which layout it runs in.
"""

from __future__ import annotations

from typing import Protocol, Sequence

from .structures import Destination, Lease, LeaseSet2


class RouterHandle(Protocol):
    """What the balancer may ask of the frontend that owns a router's I2CP session."""

    name: str

    def give_lease_set(self, lease_set: LeaseSet2) -> None: ...

    def set_publishing(self, publish: bool) -> None: ...


class BalancerPort(Protocol):
    """What a frontend reports to the balancer."""

    def router_up(self, handle: RouterHandle, identity: bytes | None = None, carried: bool = False) -> None:
        """The router's session is up; ``identity``: the router's identity hash, if known (the
        balancer then also drops the other routers' leases through it when it is lost); ``carried``:
        its leases are in the LeaseSet the routers hold (told to a balancer that started again)."""

    def leases_requested(self, router: str, leases: Sequence[Lease]) -> None: ...

    def router_down(self, router: str) -> None: ...


class PayloadSender(Protocol):
    """What the backend may ask of a frontend: send an I2CP payload to a Destination."""

    name: str

    def send_payload(self, to: Destination, payload: bytes) -> None: ...

    def prefetch(self, destination: Destination) -> None:
        """Have the router look up (and cache) ``destination``'s LeaseSet (I2CP HostLookup)."""


class BackendPort(Protocol):
    """Where frontends hand the Destination's incoming messages."""

    def deliver(self, via: PayloadSender, payload: bytes) -> None: ...

    def router_state(self, via: PayloadSender, up: bool, published: bool) -> None:
        """The frontend's router: session up or not, its leases in the published LeaseSet or not."""
