"""``mptcp``: the transport-layer alternative to the shim, for comparison.

The site routes with ``sadr-static`` (each subflow leaves through the ISP of its source address) and every
host gets kernel Multipath TCP endpoints for each of its addresses (``ip mptcp endpoint … subflow signal``),
so a connection opened with ``IPPROTO_MPTCP`` (scenario flows: ``tcpseq`` with ``mptcp: true``) grows one
subflow per address pair and survives the loss of one ISP without any agent.
"""

from __future__ import annotations

from ..topology import host_def
from . import sadr_static
from .contract import Mechanism

LIMITS = "mptcp limits set subflow 8 add_addr_accepted 8"


def add_endpoints(node, member) -> None:
    """Enable MPTCP on a host and make every one of its addresses a subflow endpoint."""
    node.sysctls["net.mptcp.enabled"] = "1"
    node.ip_commands.append(LIMITS)
    for i, addr in enumerate(member.addresses):
        node.ip_commands.append(f"mptcp endpoint add {addr.ip} dev {member.ifname} id {i + 1} subflow signal")


def _apply(net, site, options) -> None:
    sadr_static.route_by_source(net, site)
    for lan in site.lans:
        seg = net.plan.segment(f"{site.name}-{lan.name}")
        for ref in lan.hosts:
            host = host_def(ref).name
            add_endpoints(net.nodes[host], seg.member(host))
    net.notes.append(f"site {site.name}: kernel MPTCP endpoints on every host address (flows opt in with mptcp: true)")


MECHANISM = Mechanism("mptcp", "kernel Multipath TCP endpoints on every host address, over sadr-static routing",
                      "(comparison)", _apply)
