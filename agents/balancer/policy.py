"""Which leases go into the one published LeaseSet (at most 16).

Proposal 140 leaves the choice to the balancer. Two policies:

* ``fair_share``: every live router gets a fair share, taking its leases with the latest expiry
  first, and slots a router cannot fill go to the others. Leases are interleaved round-robin so no
  router dominates the front of the list (clients pick leases at random, but a truncated list would
  otherwise favour the first router).
* ``Primary``: only one live router's leases, the same router for as long as it lives. With
  ECIES-X25519-AEAD-Ratchet, an established end-to-end session is state inside the router that took
  its New Session message; a client that moves to a lease of another hosting router is not
  understood there (measured: docs/i2p-proposal-140.md). Publishing one router at a time keeps
  clients on it; the others are hot standbys whose leases are published when it dies.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from .structures import MAX_LEASES, Lease2


def lease_key(lease: Lease2) -> tuple[bytes, int]:
    """A tunnel's identity: routers re-announce the same tunnel with a slightly moved end date."""
    return (lease.gateway, lease.tunnel_id)


def fair_share(per_router: Mapping[str, Sequence[Lease2]], now_s: int, limit: int = MAX_LEASES) -> tuple[Lease2, ...]:
    """Round-robin over routers (sorted by name), each router's unexpired leases newest first."""
    queues: list[list[Lease2]] = []
    for name in sorted(per_router):
        alive = [lease for lease in per_router[name] if lease.end_s > now_s]
        alive.sort(key=lambda lease: (-lease.end_s, lease.tunnel_id, lease.gateway))
        seen: set[tuple[bytes, int]] = set()
        unique = [lease for lease in alive if not (lease_key(lease) in seen or seen.add(lease_key(lease)))]
        if unique:
            queues.append(unique)
    chosen: list[Lease2] = []
    depth = 0
    while len(chosen) < limit and any(depth < len(queue) for queue in queues):
        for queue in queues:
            if depth < len(queue) and len(chosen) < limit:
                chosen.append(queue[depth])
        depth += 1
    return tuple(chosen)


class Primary:
    """Sticky primary: the current router's leases while it has any, else the first router (by name)
    that has some."""

    def __init__(self) -> None:
        self.current: str | None = None

    def __call__(self, per_router: Mapping[str, Sequence[Lease2]], now_s: int, limit: int = MAX_LEASES) -> tuple[Lease2, ...]:
        alive = {name: [x for x in leases if x.end_s > now_s] for name, leases in per_router.items()}
        if not alive.get(self.current or ""):
            self.current = next((name for name in sorted(alive) if alive[name]), None)
        if self.current is None:
            return ()
        return fair_share({self.current: alive[self.current]}, now_s, limit)


POLICIES = {"fair_share": lambda: fair_share, "primary": Primary}
