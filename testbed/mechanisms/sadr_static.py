"""``sadr-static``: source-address-dependent routing with static routes (thesis 6.2.2.1).

Each exit router R_i gets, for every site prefix P_j, a default route *from P_j*: out through its own ISP
when j = i, otherwise towards the exit router of ISP j over the site's internal links.  With m prefixes,
r routers and e exits that is the thesis's m·r·e routes.  Kernel source-specific routes
(``ip -6 route add ::/0 from P_j via …``) are used: FRR 8.4's staticd accepts ``ipv6 route X from Y`` but
never installs it with a gateway (FRR issue 14247).

The ISPs send only a default route to the site, so every exit route is ``::/0`` and the kernel's lookup
(destination first, then source within it) always reaches the source subtree.
"""

from __future__ import annotations

from ..netplan import Route
from .contract import Mechanism


def route_by_source(net, site) -> None:
    """On every router of ``site``: a default route from each site prefix towards the exit to its ISP."""
    plan, topo = net.plan, net.topology
    prefixes = plan.site_prefixes[site.name]
    exits = {ex.isp: ex.router for ex in site.exits}
    for router in topo.site_routers(site):
        node = net.nodes[router]
        for isp, prefix in prefixes.items():
            target = exits[isp]
            if target == router:
                seg = plan.segment(f"{isp}-{router}")
                node.routes.append(Route("::/0", src=str(prefix), via=str(seg.member(isp).addresses[0].ip),
                                         dev=seg.member(router).ifname, why=f"{prefix} leaves through {isp}"))
                continue
            hop = _next_hop(net, site, router, target)
            if hop is None:
                net.notes.append(f"site {site.name}: {router} has no internal link towards {target}; "
                                 f"traffic from {prefix} cannot reach {isp} from there")
                continue
            via, dev = hop
            node.routes.append(Route("::/0", src=str(prefix), via=via, dev=dev,
                                     why=f"{prefix} must leave through {isp}, at {target}"))


def _next_hop(net, site, router: str, target: str) -> tuple[str, str] | None:
    """First hop on a shortest path of internal links (breadth-first; sites are small)."""
    links = net.topology.internal_links(site)
    adj: dict[str, list[str]] = {}
    for a, b in links:
        adj.setdefault(a, []).append(b)
        adj.setdefault(b, []).append(a)
    frontier, first = [router], {router: None}
    while frontier:
        nxt = []
        for n in frontier:
            for m in adj.get(n, []):
                if m not in first:
                    first[m] = m if n == router else first[n]
                    nxt.append(m)
        frontier = nxt
    hop = first.get(target)
    if hop is None:
        return None
    name = f"{router}-{hop}" if any(s.name == f"{router}-{hop}" for s in net.plan.segments) else f"{hop}-{router}"
    seg = net.plan.segment(name)
    return str(seg.member(hop).addresses[0].ip), seg.member(router).ifname


def _apply(net, site, options) -> None:
    route_by_source(net, site)


MECHANISM = Mechanism("sadr-static", "source-address-dependent routing with static source-specific routes",
                      "6.2.2.1", _apply, demo="scenarios/demo-link-down.yaml")
