"""How many distinct inbound gateways one router shows: T tunnels whose gateways it draws at random from
K peers are T balls thrown into K cells, and the distinct gateways are the occupied cells.

The exact law is the classical occupancy distribution,
``P(D = d) = C(K, d) d! S(T, d) / K^T`` with ``S`` the Stirling numbers of the second kind, mean
``K (1 - (1 - 1/K)^T)`` and variance ``K (K-1) (1 - 2/K)^T + K (1 - 1/K)^T - K^2 (1 - 1/K)^(2T)``.
:class:`ShadowRouter` draws from it the way a real router does over time: a virtual pool of T tunnels,
each with a gateway drawn uniformly from K; when a real tunnel is rebuilt one virtual tunnel draws a new
gateway, so its count of distinct gateways has the occupancy law at every moment and moves by at most
one per rebuild, like a single router's, instead of jumping between independent draws.
"""

from __future__ import annotations

import math
import os
import random
from fractions import Fraction


def stirling2(n: int, k: int) -> int:
    """Stirling number of the second kind: ways to split n labelled items into k non-empty sets."""
    if n < 0 or k < 0:
        raise ValueError(f"stirling2 needs n, k >= 0, not ({n}, {k})")
    row = [1] + [0] * k  # S(0, j)
    for i in range(1, n + 1):
        new = [0] * (k + 1)
        for j in range(1, min(i, k) + 1):
            new[j] = j * row[j] + row[j - 1]
        row = new
    return row[k]


def occupancy_pmf(tunnels: int, peers: int) -> tuple[Fraction, ...]:
    """Exact P(D = d) for d = 0..min(T, K): distinct cells hit by T uniform throws into K cells."""
    if tunnels < 0 or peers < 0:
        raise ValueError(f"tunnels and peers must be >= 0, not ({tunnels}, {peers})")
    if tunnels == 0 or peers == 0:
        return (Fraction(1),)
    total = peers ** tunnels
    top = min(tunnels, peers)
    return tuple(Fraction(math.comb(peers, d) * math.factorial(d) * stirling2(tunnels, d), total)
                 for d in range(top + 1))


def occupancy_mean(tunnels: int, peers: int) -> float:
    if tunnels <= 0 or peers <= 0:
        return 0.0
    return peers * (1.0 - (1.0 - 1.0 / peers) ** tunnels)


def occupancy_variance(tunnels: int, peers: int) -> float:
    if tunnels <= 0 or peers <= 0:
        return 0.0
    k, t = peers, tunnels
    return k * (k - 1) * (1 - 2 / k) ** t + k * (1 - 1 / k) ** t - k * k * (1 - 1 / k) ** (2 * t)


def fresh_rng() -> random.Random:
    """A generator of its own, seeded from the OS (no shared global state between balancers)."""
    return random.Random(os.urandom(16))


class ShadowRouter:
    """A virtual single router of ``tunnels`` tunnels over ``peers`` gateways (see the module doc).

    Every virtual tunnel's gateway is uniform over ``range(peers)`` and independent of the others at
    all times, so :attr:`distinct` follows :func:`occupancy_pmf`. Changes move as few gateways as that
    allows: :meth:`rebuild` replaces the oldest virtual tunnels; :meth:`resize` adds fresh tunnels or
    drops the oldest when T changes (as a router's pool does while a rebuilt tunnel overlaps the one it
    replaces), and when K changes it moves only the gateways it must (growing: each one moves to a new
    peer with probability (K' - K) / K'; shrinking: those beyond K' are drawn again)."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self.rng = rng if rng is not None else fresh_rng()
        self.peers = 0
        self.cells: list[int] = []  # virtual gateways, oldest tunnel first

    @property
    def tunnels(self) -> int:
        return len(self.cells)

    def resize(self, tunnels: int, peers: int) -> None:
        tunnels, peers = max(0, tunnels), max(0, peers)
        if peers == 0:
            self.cells, self.peers = [], 0
            return
        old = self.peers
        if peers > old:
            self.cells = [self.rng.randrange(old, peers) if self.rng.random() < (peers - old) / peers else c
                          for c in self.cells]
        elif peers < old:
            self.cells = [c if c < peers else self.rng.randrange(peers) for c in self.cells]
        self.peers = peers
        del self.cells[:max(0, len(self.cells) - tunnels)]
        self.cells += [self.rng.randrange(peers) for _ in range(tunnels - len(self.cells))]

    def rebuild(self, count: int = 1) -> None:
        """``count`` of the oldest virtual tunnels are rebuilt through fresh random gateways."""
        for _ in range(min(max(0, count), len(self.cells))):
            self.cells.pop(0)
            self.cells.append(self.rng.randrange(self.peers))

    @property
    def distinct(self) -> int:
        return len(set(self.cells))


LARGE_NETWORK = 4096  # the peers assumed when every tunnel seen had a gateway of its own


def estimate_peers(draws: int, distinct: int) -> int:
    """The K that makes ``distinct`` the expected number of distinct gateways among ``draws`` tunnels
    (the moment estimator, inverting :func:`occupancy_mean`; rounded). The gateways *seen* undercount
    the peers a router picks from when few tunnels were seen (6 tunnels over 6 peers show 4 on
    average); all of them distinct says the network is large (:data:`LARGE_NETWORK`)."""
    if distinct <= 0 or draws <= 0:
        return 0
    if distinct >= draws:
        return max(distinct, LARGE_NETWORK) if draws > 1 else 1
    lo, hi = float(distinct), float(LARGE_NETWORK)
    if occupancy_mean(draws, LARGE_NETWORK) < distinct:
        return LARGE_NETWORK
    for _ in range(60):  # occupancy_mean grows with K: bisection
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if occupancy_mean(draws, mid) < distinct else (lo, mid)
    return max(distinct, round((lo + hi) / 2))
