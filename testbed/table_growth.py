"""Routing-table growth (thesis ch. 2-3): the routes a default-free router carries for N multihomed sites.

The thesis's central claim is that PA addressing keeps the global table flat - the ISPs announce only
their aggregates however many sites are multihomed - while IPv4-style PI multihoming adds one route per
site.  :func:`measure` deploys a generated lab of N sites (``generate.n_sites``), waits until the transit
core's BGP table holds every prefix the plan says it should *and* has stopped changing, and reads the
counts from FRR's JSON.  ``experiments/table_growth.py`` runs it over N; a lab test runs it for small N.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .checks import ping
from .errors import LabError
from .generate import n_sites
from .lab import Lab

CORE = "core"


@dataclass(frozen=True)
class Sample:
    """One lab's numbers.  ``routes`` are prefixes in the core's BGP table, ``paths`` all their paths (a PI
    prefix arrives through both ISPs); ``settle_s`` runs from the end of deploy to a stable table."""

    mechanism: str
    sites: int
    routes: int
    paths: int
    prefixes: tuple[str, ...]
    deploy_s: float
    settle_s: float
    reachable: bool

    def as_dict(self) -> dict:
        return asdict(self)


def core_table(lab: Lab, router: str = CORE) -> dict[str, int]:
    """Prefix -> number of paths in ``router``'s IPv6 unicast BGP table."""
    routes = lab.vtysh_json(router, "show bgp ipv6 unicast json").get("routes", {})
    return {prefix: len(paths) for prefix, paths in routes.items()}


def expected_prefixes(lab: Lab) -> set[str]:
    """What the core must carry: every ISP aggregate, plus every site's PI prefix (none under PA)."""
    return {str(p) for p in lab.plan.aggregates.values()} | {str(p) for p in lab.plan.pi_prefixes.values()}


def settled_table(lab: Lab, router: str = CORE, quiet: float = 1.0, timeout: float = 120.0) -> dict[str, int]:
    """The table once it holds every expected prefix and has not changed for ``quiet`` seconds.

    Waiting for the expected prefixes alone could read a table still growing (an extra leaked route would
    be missed); waiting for quiet alone could stop before slow announcements arrive.  Both are required."""
    expected = expected_prefixes(lab)
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while True:
        table = core_table(lab, router)
        now = time.monotonic()
        if table != last:
            last, since = table, now
        elif expected <= table.keys() and now - since >= quiet:
            return table
        if now > deadline:
            missing = sorted(expected - table.keys())
            raise LabError(f"{router}'s BGP table did not settle within {timeout:.0f} s "
                           f"({len(table)} prefixes; missing {missing[:5]})")
        time.sleep(0.2)


def measure(n: int, mechanism: str, root: str | Path | None = None, quiet: float = 1.0,
            deploy_timeout: float = 300.0, raise_neigh_table: bool = False) -> Sample:
    """Deploy ``n`` sites under ``mechanism``, read the core's settled table, ping once, tear down
    (``raise_neigh_table``: see ``Lab.deploy``; past ~30 sites the host's default neighbour table is short)."""
    tag = mechanism.replace("-", "")[:2]  # pi, sa, …: the lab names of a run stay apart
    topo = n_sites(n, mechanism, name=f"tg{tag}{n}")
    t0 = time.monotonic()
    lab = Lab.deploy(topo, root=root, timeout=deploy_timeout, raise_neigh_table=raise_neigh_table)
    try:
        deploy_s = time.monotonic() - t0
        t1 = time.monotonic()
        table = settled_table(lab, quiet=quiet)
        settle_s = time.monotonic() - t1 - quiet
        host = f"s{n}h1"  # the last site: its routes were announced last
        reachable = ping(lab, host, lab.plan.address(host), lab.plan.address("srv"), count=2)
    finally:
        lab.destroy()
    return Sample(mechanism, n, len(table), sum(table.values()), tuple(sorted(table)), round(deploy_s, 2),
                  round(max(0.0, settle_s), 2), reachable)
