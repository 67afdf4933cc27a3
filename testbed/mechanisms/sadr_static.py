"""``sadr-static``: source-address-dependent routing with static routes (thesis 6.2.2.1).

Every router of the site - exits and interior routers: the source-routing domain - gets, for every site
prefix P_j, a default route *from P_j*: at the exit of ISP j out through that ISP, elsewhere towards that
exit over the site's internal links (first hop of a shortest path).  A site IGP (ospf6) carries the site's
own prefixes; no default goes into it, so nothing competes with the source-specific defaults.  With m
prefixes, r routers and e external destinations per router (here 1: the default) that is the thesis's
m·r·e routes (``mhlab plan`` prints the count).  Kernel source-specific routes
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


def static_route_count(net, site) -> tuple[int, int, int, int]:
    """The thesis's count (6.2.2.1): (m prefixes, r routers of the source-routing domain, e external
    destinations per router, source-specific routes configured).  Here e = 1: the ISPs send only a default."""
    m, r = len(net.plan.site_prefixes[site.name]), len(net.topology.site_routers(site))
    routes = sum(1 for n in net.topology.site_routers(site) for rt in net.nodes[n].routes if rt.src)
    return m, r, 1, routes


def _validate(topo, site, options) -> list:
    if len({e.isp for e in site.exits}) < 2:
        return [(("exits",), "sadr-static routes by source between several ISPs' prefixes: the site has only "
                             "one ISP")]
    return []


# the last resort of every "from P" lookup: a route through a link that went down is deleted by the kernel,
# and without this the packet falls through to the destination-only default and leaves by another ISP
LAST_RESORT_METRIC = 4294967295


def last_resort(net, site) -> None:
    """On every router of ``site``: ``unreachable ::/0 from P`` for each site prefix, at the worst metric,
    so a packet from P whose route is gone (its next hop's link down) gets an ICMPv6 unreachable at once
    instead of leaving by another ISP's exit (the fall-through trap; sadr-igp and sadr-bgp close it too)."""
    for router in net.topology.site_routers(site):
        net.nodes[router].ip_commands += [f"route add unreachable ::/0 from {p} metric {LAST_RESORT_METRIC}"
                                          for p in net.plan.site_prefixes[site.name].values()]


def _apply(net, site, options) -> None:
    route_by_source(net, site)
    last_resort(net, site)
    m, r, e, configured = static_route_count(net, site)
    net.notes.append(f"site {site.name}: sadr-static - {m} prefixes x {r} routers x {e} external destination = "
                     f"{m * r * e} source-specific routes (thesis 6.2.2.1: m*r*e, (m-1)*r*e = {(m - 1) * r * e} "
                     f"beyond destination-only routing); {configured} configured")


MECHANISM = Mechanism("sadr-static", "source-address-dependent routing with static source-specific routes",
                      "6.2.2.1", _apply, validate=_validate, demo="scenarios/demo-link-down.yaml")
