"""``none``: the plain PA site, routing by destination only - the thesis's problem (ch. 3.5).

Each exit router sends everything out through its own ISP; with a site IGP the exits announce a default
route in it (while their ISP's BGP default lasts), so interior routers send everything to the nearest exit.  A host that picks its ISP-B address while its
gateway is the ISP-A exit router is dropped by ISP A's ingress filter.
"""

from .contract import Mechanism


def gateway_isps(net, site, host: str) -> list[str]:
    """Only the source addresses of the ISP whose exit router is the host's gateway work: a packet with
    any other source leaves through that ISP too and its ingress filter drops it.  Behind an interior
    router the site IGP picks the exit, so no source is guaranteed (none is awaited)."""
    topo = net.topology
    for lan in site.lans:
        if host in [h if isinstance(h, str) else h.name for h in lan.hosts]:
            gateway = lan.gateway or topo.lan_routers(site, lan)[0]
            return [e.isp for e in site.exits if e.router == gateway][:1]
    return []


def _apply(net, site, options) -> None:
    for ex in site.exits:  # with a site IGP, interior routers follow its default to the nearest exit
        node = net.nodes[ex.router]
        if node.ospf6 is not None:
            node.ospf6.default_originate = True
    for r in [r for r in net.topology.site_routers(site) if r not in {e.router for e in site.exits}]:
        net.await_kernel_routes.setdefault(r, []).append("::/0")
    net.notes.append(f"site {site.name}: mechanism none - packets leave by destination only (the nearest exit); "
                     "a source address from another ISP is dropped or rejected by that exit's ISP")


MECHANISM = Mechanism("none", "plain PA multihoming, destination-only routing (shows the ingress-filter problem)",
                      "ch. 3.5", _apply, usable_sources=gateway_isps, demo="scenarios/demo-link-down.yaml", baseline=True)
