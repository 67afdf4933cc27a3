"""``none``: the plain PA site, routing by destination only - the thesis's problem (ch. 3.5).

Each exit router sends everything out through its own ISP.  A host that picks its ISP-B address while its
gateway is the ISP-A exit router is dropped by ISP A's ingress filter.
"""

from .contract import Mechanism


def _gateway_isps(net, site, host: str) -> list[str]:
    """Only the source addresses of the ISP whose exit router is the host's gateway work: a packet with
    any other source leaves through that ISP too and its ingress filter drops it."""
    topo = net.topology
    for lan in site.lans:
        if host in [h if isinstance(h, str) else h.name for h in lan.hosts]:
            gateway = lan.gateway or topo.lan_routers(site, lan)[0]
            return [e.isp for e in site.exits if e.router == gateway][:1] or [site.exits[0].isp]
    return [site.exits[0].isp]


def _apply(net, site, options) -> None:
    net.notes.append(f"site {site.name}: mechanism none - packets leave by destination only; a source "
                     "address from the other ISP is dropped by the ingress filter")


MECHANISM = Mechanism("none", "plain PA multihoming, destination-only routing (shows the ingress-filter problem)",
                      "ch. 3.5", _apply, usable_sources=_gateway_isps, demo="scenarios/demo-link-down.yaml", baseline=True)
