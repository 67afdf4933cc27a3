"""``pi-bgp``: IPv4-style multihoming with a provider-independent prefix (thesis ch. 2.6) - the baseline.

The site owns a PI /48 (``plan.pi_prefixes``) that is not part of any ISP's aggregate.  Every exit router
announces it to its ISP; every ISP accepts it from that customer, lets it through its ingress filter and
passes it on to its upstreams, so each default-free router carries one more route per multihomed site -
the table growth PA addressing avoids (``experiments/table_growth.py`` measures it).

Failover is BGP's: the exit routers peer over iBGP (``next-hop-self``: there is no IGP inside the site, so
a route learnt from the other exit must point at that exit), hence when ISP A fails its exit router falls
back to the default route learnt from the other exit, and upstream the PI route through ISP A is
withdrawn.  How fast depends on how the failure is detected: a link going down is seen at once, a silent
one only when the hold timer (or BFD) expires - the topology's ``bgp:`` block sets both.

Hosts keep their PA addresses too (the plan numbers every site segment from every site prefix).  The PI
address is the one to use (scenario selector ``{isp: pi}``; it is also every host's first address); so
that the PA ones are not simply broken (``mhlab check`` tries every address), they are routed as with
``sadr-static`` - each leaves through its own ISP and fails with it, as PA addresses do.

Traffic engineering the IPv4 way (thesis 6.3.2.1.1-2; options ``prepend``, ``communities``, ``local_pref``,
each per ISP): inbound by prepending the site's AS to, or tagging communities on, the PI announcement sent
to one ISP; outbound by the local preference of the routes learnt from each ISP.  Each is a route-map on top
of the session's prefix lists (``te-out-<isp>``, ``te-in-<isp>``).  These knobs choose one path per
prefix at every remote router, so a split other than all-or-nothing needs more-specific announcements,
each one more route in every default-free table (``experiments/te_compare.py`` measures it).
"""

from __future__ import annotations

import re

from pydantic import Field

from ..netplan import Neighbor, NetPlan, Node, Route
from . import sadr_static
from .contract import FieldProblem, Mechanism, Options

COMMUNITY = re.compile(r"^(\d{1,5}:\d{1,5}|no-export|no-advertise|local-AS|blackhole|graceful-shutdown)$")


class PiBgpOptions(Options):
    """BGP traffic engineering the IPv4 way (thesis 6.3.2.1.1-2), per ISP of the site."""

    prepend: dict[str, int] = Field(default_factory=dict, description="ISP -> times the site's AS is prepended to "
                                    "the PI announcement sent to it (inbound: a longer path is less preferred)")
    communities: dict[str, list[str]] = Field(default_factory=dict, description="ISP -> communities on the PI "
                                              "announcement sent to it ('ASN:N', no-export...; the lab's ISPs "
                                              "act only on the well-known ones)")
    local_pref: dict[str, int] = Field(default_factory=dict, description="ISP -> local preference of the routes "
                                       "learnt from it (outbound: the highest wins at every exit router)")


def _validate(topology, site, opts: PiBgpOptions) -> list[FieldProblem]:
    isps = [e.isp for e in site.exits]
    problems: list[FieldProblem] = []
    for key in ("prepend", "communities", "local_pref"):
        for isp, value in getattr(opts, key).items():
            if isp not in isps:
                problems.append((("options", key, isp), f"{isp} is not an ISP of site {site.name} ({', '.join(isps)})"))
            elif key == "prepend" and not 0 <= value <= 10:
                problems.append((("options", key, isp), f"prepend {value} is outside 0..10"))
            elif key == "local_pref" and not 0 <= value <= 4294967295:
                problems.append((("options", key, isp), f"local preference {value} is outside 0..4294967295"))
            elif key == "communities":
                problems += [(("options", key, isp, i), f"{c!r} is not a community (ASN:N or a well-known name)")
                             for i, c in enumerate(value) if not COMMUNITY.match(c)]
    return problems


def _traffic_engineering(net: NetPlan, site, opts: PiBgpOptions) -> None:
    """Prepending and communities on what each exit sends its ISP; local preference on what it learns."""
    asn = net.topology.site_asn(site)
    for ex in site.exits:
        nb = _neighbor(net.nodes[ex.router], ex.isp)
        if opts.prepend.get(ex.isp):
            nb.set_out.append("as-path prepend " + " ".join([str(asn)] * opts.prepend[ex.isp]))
        if opts.communities.get(ex.isp):
            nb.set_out.append("community " + " ".join(opts.communities[ex.isp]) + " additive")
        if ex.isp in opts.local_pref:
            nb.set_in.append(f"local-preference {opts.local_pref[ex.isp]}")


def _apply(net: NetPlan, site, options: PiBgpOptions) -> None:
    plan = net.plan
    pi = str(plan.pi_prefixes[site.name])
    for ex in site.exits:
        router, isp = net.nodes[ex.router], net.nodes[ex.isp]
        if pi not in router.bgp.networks:
            router.bgp.networks.append(pi)
            router.routes.append(Route(pi, kind="blackhole", why=f"anchor for announcing the PI prefix {pi}"))
        _add(_neighbor(router, ex.isp).export, pi)
        _add(_neighbor(isp, ex.router).accept, pi)
        _add(isp.ingress[plan.segment(f"{ex.isp}-{ex.router}").member(ex.isp).ifname], pi)
        _transit(net, ex.isp, pi, set())
    _ibgp_between_exits(net, site)
    _traffic_engineering(net, site, options)
    sadr_static.route_by_source(net, site)


def _transit(net: NetPlan, isp: str, prefix: str, seen: set[str]) -> None:
    """``isp`` passes ``prefix`` to each upstream and each upstream accepts it, all the way up."""
    for up in net.topology.isp(isp).upstreams:
        _add(_neighbor(net.nodes[isp], up).export, prefix)
        _add(_neighbor(net.nodes[up], isp).accept, prefix)
        if up not in seen:
            seen.add(up)
            _transit(net, up, prefix, seen)


def _ibgp_between_exits(net: NetPlan, site) -> None:
    """iBGP over each internal link between two exit routers, exchanging the ISPs' default routes."""
    plan = net.plan
    pi = plan.pi_prefixes[site.name]
    exits = {ex.router for ex in site.exits}
    for a, b in net.topology.internal_links(site):
        if a not in exits or b not in exits:
            net.notes.append(f"site {site.name}: {a}-{b} is not between two exit routers; pi-bgp runs iBGP "
                             "only between directly linked exits (no IGP inside the site)")
            continue
        seg = plan.segment(f"{a}-{b}")
        for here, there in ((a, b), (b, a)):
            node = net.nodes[here]
            node.bgp.neighbors.append(Neighbor(there, str(seg.member(there).address_in(pi)), node.bgp.asn,
                                               "internal", export=["::/0"], accept=["::/0"], next_hop_self=True))


def _neighbor(node: Node, peer: str) -> Neighbor:
    return next(n for n in node.bgp.neighbors if n.peer == peer)


def _add(prefixes: list[str], prefix: str) -> None:
    if prefix not in prefixes:
        prefixes.append(prefix)


MECHANISM = Mechanism("pi-bgp", "IPv4-style multihoming: a provider-independent /48 announced through every ISP "
                      "(baseline: one more global route per site)", "ch. 2.6", _apply, pi_prefix=True,
                      options=PiBgpOptions, validate=_validate)
