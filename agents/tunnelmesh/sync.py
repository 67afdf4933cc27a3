"""One synchronisation step of the tunnel-mesh agent: the kernel routes an exit router R_i should hold,
derived from the routes it holds now.

- own prefix Pref_i: the decapsulation route of its anycast address Pref_i:FFFF:FFFF:FFFF:FFFF:FFFF
  (``encap seg6local action End.DT6``: the inner packet is routed again, out through ISP i) exists while
  R_i has its ISP's default route from BGP.  ospf6d redistributes that kernel route, so the anycast /128
  is in the site IGP exactly while this exit can deliver Pref_i traffic.
- each other prefix Pref_j: ``::/0 from Pref_j encap seg6 mode encap.red segs <anycast_j>`` (IPv6 in IPv6,
  40 bytes, no SRH) exists while the IGP has a route to anycast_j.  Without it the packet falls through to
  R_i's own default, where R_i's egress filter rejects it with ICMPv6 code 5 (policy-fail) to the host.

Pure: ``plan(routes, own, foreign)`` returns the ``ip`` commands to run, so it is tested without root.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

DECAP_METRIC = 1


def prefix(text: str) -> str:
    """``default`` / a bare address / a prefix from ``ip -j route`` as a normalised prefix."""
    return "::/0" if text == "default" else str(ipaddress.IPv6Network(text, strict=False))


@dataclass(frozen=True)
class Pair:
    """A site prefix and its anycast address (``Pref:FFFF:FFFF:FFFF:FFFF:FFFF``)."""

    prefix: str
    anycast: str

    @classmethod
    def parse(cls, text: str) -> "Pair":
        pref, _, any_ = text.partition("=")
        return cls(prefix(pref), str(ipaddress.IPv6Address(any_)))

    @property
    def host(self) -> str:
        return f"{self.anycast}/128"


def _has_isp_default(routes: list[dict]) -> bool:
    return any(prefix(r["dst"]) == "::/0" and "from" not in r and r.get("protocol") == "bgp" for r in routes)


def _igp_route(routes: list[dict], host: str) -> dict | None:
    return next((r for r in routes if prefix(r["dst"]) == host and r.get("protocol") == "ospf"), None)


def _dev(route: dict) -> str:
    if "dev" in route:
        return route["dev"]
    return route["nexthops"][0]["dev"]


def plan(routes: list[dict], own: list[Pair], foreign: list[Pair], dev: str | None) -> list[list[str]]:
    """The ``ip`` argv lists that bring the kernel from ``routes`` (``ip -j -6 route show``) to the wanted
    state; empty when it is there already.  ``dev`` is an internal interface that is up, for the
    decapsulation route (None: none is up).  Not ``lo``: the kernel turns a forwarding route on the loopback
    into a reject route ("unreachable route")."""
    cmds: list[list[str]] = []
    up = _has_isp_default(routes) and dev is not None
    for pair in own:
        have = next((r for r in routes if prefix(r["dst"]) == pair.host and r.get("encap") == "seg6local"), None)
        if have is not None and up and have.get("dev") != dev:
            cmds.append(["ip", "-6", "route", "del", pair.host, "dev", have["dev"], "metric", str(DECAP_METRIC)])
            have = None
        if up and not have:
            cmds.append(["ip", "-6", "route", "replace", pair.host, "dev", dev, "metric", str(DECAP_METRIC),
                         "encap", "seg6local", "action", "End.DT6", "table", "254"])
        elif have and not up:
            cmds.append(["ip", "-6", "route", "del", pair.host, "dev", have["dev"], "metric", str(DECAP_METRIC)])
    for pair in foreign:
        target = _igp_route(routes, pair.host)
        have = next((r for r in routes if prefix(r["dst"]) == "::/0" and r.get("from")
                     and prefix(r["from"]) == pair.prefix), None)
        if target is not None:
            want_dev = _dev(target)
            if have is None or have.get("encap") != "seg6" or have.get("dev") != want_dev:
                cmds.append(["ip", "-6", "route", "replace", "::/0", "from", pair.prefix, "encap", "seg6",
                             "mode", "encap.red", "segs", pair.anycast, "dev", want_dev])
        elif have is not None:
            cmds.append(["ip", "-6", "route", "del", "::/0", "from", pair.prefix])
    return cmds
