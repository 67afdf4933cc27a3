"""What the dynamic source-address-dependent routing mechanisms share: the routing domain they span.

Thesis 6.2.2: the routers doing source-address-dependent routing must form a *connected* domain that
contains every exit router, so a packet that enters it anywhere can be passed, inside it, to the exit
of the ISP that delegated its source prefix.  Both ``sadr-bgp`` (the iBGP domain) and ``sadr-igp`` (the
IGP's routers) check that when the file is parsed, and peer over the internal links inside the domain.
"""

from __future__ import annotations

from dataclasses import dataclass

from .contract import FieldPath, FieldProblem


@dataclass(frozen=True)
class Adjacency:
    """One internal link seen from ``router``: the peer, both addresses on it, and the local interface."""

    router: str
    peer: str
    local: str
    remote: str
    ifname: str


def isp_problems(site, mechanism: str) -> list[FieldProblem]:
    """Routing by source needs at least two ISPs: with one there is nothing to choose."""
    isps = list(dict.fromkeys(ex.isp for ex in site.exits))
    if len(isps) < 2:
        return [(("exits",), f"{mechanism} routes each site prefix to the exit of its own ISP: the site needs "
                             f"two or more ISPs, it has {len(isps)} ({', '.join(isps)}); use mechanism none")]
    return []


def domain_problems(topo, site, members: list[str] | None, field: FieldPath, mechanism: str) -> list[FieldProblem]:
    """``members`` (None: every site router) must be site routers and, with the internal links between
    them, form one connected domain holding every exit router."""
    routers = topo.site_routers(site)
    exits = list(dict.fromkeys(ex.router for ex in site.exits))
    problems: list[FieldProblem] = []
    if members is not None:
        for k, name in enumerate(members):
            if name not in routers:
                problems.append((field + (k,), f"{name!r} is not a router of site {site.name} "
                                               f"({', '.join(routers)})"))
        if problems:
            return problems
    domain = set(exits) | set(members if members is not None else routers)
    parts = _components(domain, topo.internal_links(site))
    with_exits = [p for p in parts if p & set(exits)]
    if len(with_exits) > 1:
        groups = " | ".join(", ".join(sorted(p)) for p in with_exits)
        outside = sorted(set(routers) - domain)
        hint = (f"add the interior routers that join them to {field[-1]} (outside it now: {', '.join(outside)})"
                if outside else "add internal links between them (links:)")
        where = field if members is not None else ("links",)
        problems.append((where, f"{mechanism} needs one connected domain holding every exit router, but its "
                                f"routers fall apart into {groups}; {hint}"))
    return problems


def domain(topo, site, members: list[str] | None) -> list[str]:
    """The domain's routers, in the site's order (exits first)."""
    chosen = set(ex.router for ex in site.exits) | set(members if members is not None else topo.site_routers(site))
    return [r for r in topo.site_routers(site) if r in chosen]


def adjacencies(net, site, routers: list[str]) -> list[Adjacency]:
    """Every internal link between two routers of the domain, once from each side."""
    inside = set(routers)
    out = []
    for a, b in net.topology.internal_links(site):
        if a not in inside or b not in inside:
            continue
        seg = net.plan.segment(f"{a}-{b}")
        for here, there in ((a, b), (b, a)):
            out.append(Adjacency(here, there, str(seg.member(here).addresses[0].ip),
                                 str(seg.member(there).addresses[0].ip), seg.member(here).ifname))
    return out


def lan_interfaces(net, site, router: str) -> list[str]:
    """The router's interfaces on the site's LANs (its connected /64s that hosts use)."""
    names = {f"{site.name}-{lan.name}" for lan in site.lans}
    return [seg.member(router).ifname for seg in net.plan.segments_of(router) if seg.name in names]


def _components(nodes: set[str], links: list[tuple[str, str]]) -> list[set[str]]:
    adj: dict[str, set[str]] = {n: set() for n in nodes}
    for a, b in links:
        if a in nodes and b in nodes:
            adj[a].add(b)
            adj[b].add(a)
    seen: set[str] = set()
    parts = []
    for n in sorted(nodes):
        if n in seen:
            continue
        part, stack = set(), [n]
        while stack:
            m = stack.pop()
            if m not in part:
                part.add(m)
                stack.extend(adj[m] - part)
        seen |= part
        parts.append(part)
    return parts
