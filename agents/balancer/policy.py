"""Which leases go into the one published LeaseSet (at most 16).

Proposal 140 leaves the choice to the balancer. Three policies:

* ``fair_share``: every live router gets a fair share, taking its leases with the latest expiry
  first, and slots a router cannot fill go to the others. Leases are interleaved round-robin so no
  router dominates the front of the list (clients pick leases at random, but a truncated list would
  otherwise favour the first router).
* ``Primary``: only one live router's leases, the same router for as long as it lives. With
  ECIES-X25519-AEAD-Ratchet, an established end-to-end session is state inside the router that took
  its New Session message; a client that moves to a lease of another hosting router is not
  understood there (measured: docs/i2p-proposal-140.md). Publishing one router at a time keeps
  clients on it; the others are hot standbys whose leases are published when it dies.
* ``GatewayAware``: the proposal's defence against gateway-set distinguishability. A multihomed
  LeaseSet is the union of N routers' pools and so shows more distinct inbound gateways than one
  router of the same size (measured: docs/i2p-proposal-140.md). This policy publishes only the leases
  whose gateway is in a small, sticky set: first the fewest gateways that still give every live
  router a lease (greedy set cover), then more gateways up to ``gateways``, and it keeps the
  gateways it published before for as long as they are offered, so the set changes only when tunnels
  are rebuilt, as one router's does. The default target is *drawn* from what one router with as many
  tunnels would show: T tunnels whose gateways are drawn at random from the K peers the hosting routers
  have been seen to use (:mod:`.occupancy`; a fixed target at its mean, ``draw=False``, was measured to
  be too regular: always the same count, where a single router's varies).
"""

from __future__ import annotations

import random
from typing import Callable, Mapping, Sequence

from .occupancy import ShadowRouter, estimate_peers, occupancy_mean
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


PEER_MEMORY_S = 1200  # two tunnel lifetimes: a peer no router has used for that long is forgotten


def single_router_gateways(tunnels: int, peers: int) -> int:
    """Distinct gateways one router shows on average with ``tunnels`` 1-hop inbound tunnels whose
    gateways it draws at random from ``peers`` routers: the expected number of occupied cells,
    K (1 - (1 - 1/K)^T), rounded. In a large network it is T (every tunnel its own gateway); in a
    small lab it saturates at K."""
    if tunnels <= 0 or peers <= 0:
        return 0
    return max(1, round(occupancy_mean(tunnels, peers)))


class GatewayAware:
    """Publish every lease through a small, sticky set of inbound gateways (see the module doc).

    ``gateways`` is a fixed target number of distinct gateways. ``None`` takes one router of the same
    size: T tunnels (the distinct leases offered, at most ``limit``) over K peers (those seen as
    gateways in any router's pool during the last :data:`PEER_MEMORY_S`). With ``draw`` (the default)
    the target is the distinct-gateway count of a :class:`~.occupancy.ShadowRouter` of that size, so it
    follows the single-router distribution, not just its mean, and moves like one router's: one
    virtual tunnel redrawn per tunnel a router rebuilt. ``draw=False`` takes the rounded mean
    (:func:`single_router_gateways`). ``estimate`` takes for K the peers the routers' draws imply
    (:func:`~.occupancy.estimate_peers`) instead of those seen (measured: better for small N, worse
    against i2pd's profile-weighted picks at N = 10; docs/i2p-proposal-140.md 3d). ``rng`` seeds the
    draws (default: from ``os.urandom``, one generator per policy). The set cover that keeps every live
    router reachable comes first, so the target is exceeded only when no smaller set reaches every
    router."""

    def __init__(self, gateways: int | None = None, draw: bool = True, rng: random.Random | None = None,
                 estimate: bool = False) -> None:
        if gateways is not None and gateways < 1:
            raise ValueError(f"gateways must be at least 1, not {gateways}")
        self.gateways = gateways
        self.draw = draw
        self.estimate = estimate
        self.tunnels_seen: dict[tuple[bytes, int], int] = {}  # tunnel -> last time (s) it was offered
        self.shadow = ShadowRouter(rng)
        self.chosen: tuple[bytes, ...] = ()
        self.offered: frozenset[tuple[bytes, int]] = frozenset()  # tunnels offered at the last call
        self.peers_seen: dict[bytes, int] = {}  # gateway -> last time (s) a router offered a tunnel through it

    def target(self, alive: Mapping[str, Sequence[Lease2]], now_s: int = 0, limit: int = MAX_LEASES) -> int:
        if self.gateways is not None:
            return self.gateways
        for leases in alive.values():
            for lease in leases:
                self.peers_seen[lease.gateway] = now_s
                self.tunnels_seen[lease_key(lease)] = now_s
        self.peers_seen = {gw: t for gw, t in self.peers_seen.items() if now_s - t <= PEER_MEMORY_S}
        self.tunnels_seen = {k: t for k, t in self.tunnels_seen.items() if now_s - t <= PEER_MEMORY_S}
        offered = frozenset(lease_key(x) for leases in alive.values() for x in leases)
        tunnels, peers = min(limit, len(offered)), len(self.peers_seen)
        if self.estimate:  # the peers the routers pick from, not just those they happened to pick
            peers = estimate_peers(len(self.tunnels_seen), peers)
        new = len(offered - self.offered)
        self.offered = offered
        if not self.draw:
            return single_router_gateways(tunnels, peers)
        grown = max(0, tunnels - self.shadow.tunnels)  # new tunnels that enlarged the pool are drawn fresh
        self.shadow.resize(tunnels, peers)
        self.shadow.rebuild(new - grown)  # the others replaced old ones: as many virtual rebuilds
        return max(1, self.shadow.distinct) if tunnels and peers else 0

    def __call__(self, per_router: Mapping[str, Sequence[Lease2]], now_s: int, limit: int = MAX_LEASES) -> tuple[Lease2, ...]:
        alive = {name: [x for x in leases if x.end_s > now_s] for name, leases in per_router.items()}
        alive = {name: leases for name, leases in alive.items() if leases}
        if not alive:
            self.chosen = ()
            return ()
        reach: dict[bytes, set[str]] = {}
        count: dict[bytes, int] = {}
        for name, leases in alive.items():
            for key in {lease_key(x) for x in leases}:
                reach.setdefault(key[0], set()).add(name)
                count[key[0]] = count.get(key[0], 0) + 1
        target = self.target(alive, now_s, limit)
        # gateways published before, most useful first, cut to the target
        kept = sorted((gw for gw in self.chosen if gw in reach), key=lambda gw: (-len(reach[gw]), -count[gw], gw))
        chosen = kept[:target]
        uncovered = set(alive) - set().union(*(reach[gw] for gw in chosen))
        while uncovered:  # greedy set cover: the gateway reaching most routers still without a lease
            best = min((gw for gw in reach if gw not in chosen),
                       key=lambda gw: (-len(reach[gw] & uncovered), -count[gw], gw))
            chosen.append(best)
            uncovered -= reach[best]
        for gw in sorted((gw for gw in reach if gw not in chosen), key=lambda gw: (-len(reach[gw]), -count[gw], gw)):
            if len(chosen) >= target:
                break
            chosen.append(gw)
        self.chosen = tuple(chosen)
        return pick_leases(self.chosen, alive, now_s, limit)


def pick_leases(gateways: Sequence[bytes], per_router: Mapping[str, Sequence[Lease2]], now_s: int,
                limit: int = MAX_LEASES) -> tuple[Lease2, ...]:
    """The leases through ``gateways``, at most ``limit``: first one per router (newest first), then one
    per gateway not shown yet, then a fair share of the rest. When the leases through the chosen
    gateways exceed the limit, a plain fair share would drop whole gateways and show fewer than
    chosen."""
    wanted = set(gateways)
    pools = {name: sorted((x for x in leases if x.gateway in wanted and x.end_s > now_s),
                          key=lambda x: (-x.end_s, x.tunnel_id, x.gateway)) for name, leases in per_router.items()}
    picked: dict[tuple[bytes, int], Lease2] = {}

    def take(lease: Lease2) -> None:
        if len(picked) < limit:
            picked.setdefault(lease_key(lease), lease)

    for name in sorted(pools):
        if pools[name]:
            take(pools[name][0])
    for gw in gateways:
        if not any(x.gateway == gw for x in picked.values()):
            through = [x for name in sorted(pools) for x in pools[name] if x.gateway == gw]
            if through:
                take(min(through, key=lambda x: (-x.end_s, x.tunnel_id)))
    for lease in fair_share(pools, now_s, MAX_LEASES):
        take(lease)
    return tuple(picked.values())


POLICIES: dict[str, Callable[..., Callable[..., tuple[Lease2, ...]]]] = {
    "fair_share": lambda: fair_share, "primary": Primary, "gateway_aware": GatewayAware}


def make_policy(name: str, gateways: int | None = None) -> Callable[..., tuple[Lease2, ...]]:
    """A fresh policy by its CLI / lab-file name (``gateways`` only for ``gateway_aware``)."""
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}; known: {', '.join(sorted(POLICIES))}")
    return GatewayAware(gateways) if name == "gateway_aware" else POLICIES[name]()
