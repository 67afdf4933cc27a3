"""Multihoming mechanisms as plug-ins: each one adds what it needs to the base network of a site.

A mechanism is registered by name and chosen per site in the topology file (``mechanism: sadr-static``).
It receives the whole NetPlan and its site and adds routes, filters, daemons or agents to that site's
nodes.  Adding a mechanism never touches ``lab.py``: register it here.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional

if TYPE_CHECKING:
    from ..netplan import NetPlan
    from ..topology import Site


@dataclass(frozen=True)
class Mechanism:
    name: str
    summary: str  # one line for `mhlab mechanisms`
    thesis: str  # where the thesis describes it
    apply: Callable[["NetPlan", "Site"], None]
    # optional: the interface identifier of a site host in each of its /64s (e.g. HBA addresses); None = plan's
    host_iids: Optional[Callable[["Site", str, tuple[ipaddress.IPv6Network, ...]], tuple[int, ...]]] = None
    demo: Optional[str] = None  # scenario file (from the repo root) `mhlab demo` runs with every site on this mechanism


def _registry() -> dict[str, Mechanism]:
    from . import mptcp, none, pi_bgp, sadr_static, shim

    return {m.name: m for m in (none.MECHANISM, sadr_static.MECHANISM, pi_bgp.MECHANISM, shim.MECHANISM,
                                mptcp.MECHANISM)}


def mechanisms() -> dict[str, Mechanism]:
    """All known mechanisms by name."""
    return _registry()


def get_mechanism(name: str) -> Mechanism:
    try:
        return _registry()[name]
    except KeyError:
        raise KeyError(f"unknown mechanism {name!r}; known: {', '.join(sorted(_registry()))}") from None
