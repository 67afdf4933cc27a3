"""``tunnel-mesh``: a virtual mesh of tunnels between the exit routers (thesis 6.2.1, phase 1).

Only the exit routers route by source.  Every exit router R_i of ISP i owns the anycast address
Pref_i:FFFF:FFFF:FFFF:FFFF:FFFF (the /48 followed by 80 one bits) and announces its /128 in the site IGP
(ospf6d, which the mechanism requires).  Inside the site, packets follow the IGP's default to the nearest
exit; an exit R_i that receives a packet from Pref_j (j != i) encapsulates it towards anycast_j, whose
exit decapsulates it and sends it out through ISP j with its original source.  When no exit of ISP j is
reachable (anycast_j is gone from the IGP) the packet is dropped at R_i with ICMPv6 Destination
Unreachable code 5 to the host.

How, on these kernels (no ip6ip6 module): the tunnel is SRv6 - ``encap seg6 mode encap.red`` with one
segment is plain IPv6-in-IPv6 (next header 41, 40 bytes, no SRH), ``encap seg6local action End.DT6`` on the
anycast /128 decapsulates.  The agent ``agents.tunnelmesh`` on each exit keeps both in step with routing
(see ``agents/tunnelmesh/sync.py``): the decap route - and so the IGP announcement, ospf6d redistributing
that kernel route - exists while the exit has its ISP's BGP default; the encap route ``::/0 from Pref_j``
exists while the IGP has anycast_j.  Without it the packet falls through to R_i's own default, where an
nftables egress filter on the access link rejects any foreign source with ``icmpv6 policy-fail``
(counter ``noexit_<interface>``; the error's source is the packet's destination, and R_i routes it back to
the host through the IGP).

MTU: the tunnel adds 40 bytes.  Internal links between site routers get ``link_mtu`` (default 1600) on
both ends, so full-size 1500-byte packets from the LANs cross the mesh whole and hosts keep a path MTU of
1500; with 1500-byte internal links larger inner packets vanish silently (the Packet Too Big goes to the
tunnel's own source, the exit router).  LANs stay at 1500.
"""

from __future__ import annotations

import ipaddress

from pydantic import Field

from ..netplan import NetPlan, Process
from .contract import Mechanism, Options, Readiness

AGENT = "tunnelmesh"
READY = "{node_dir}/tunnelmesh.ready"


class TunnelMeshOptions(Options):
    link_mtu: int = Field(1600, ge=1540, le=9000, description="MTU of the site's internal router-to-router "
                          "links (both ends): at least 1540 so a 1500-byte packet plus the 40-byte tunnel "
                          "header fits")
    reject: bool = Field(True, description="reject packets no exit can take with ICMPv6 code 5 at the exit "
                         "router (false: the exit's ISP sees them, and its ingress filter decides)")


def anycast(prefix: ipaddress.IPv6Network) -> str:
    """Pref:FFFF:FFFF:FFFF:FFFF:FFFF - the /48 followed by 80 one bits (thesis 6.2.1)."""
    return str(ipaddress.IPv6Address(int(prefix.network_address) | ((1 << 80) - 1)))


def _validate(topo, site, options) -> list:
    problems = []
    if len({e.isp for e in site.exits}) < 2:
        problems.append((("exits",), "tunnel-mesh joins the exits of several ISPs: the site has only one ISP"))
    if topo.site_igp(site) != "ospf6":
        problems.append((("igp",) if "igp" in site.model_fields_set else ("mechanism",),
                         "tunnel-mesh announces the exits' anycast addresses in the site IGP: set igp: ospf6"))
    return problems


def _apply(net: NetPlan, site, options: TunnelMeshOptions) -> None:
    topo, plan = net.topology, net.plan
    prefixes = plan.site_prefixes[site.name]
    for a, b in topo.internal_links(site):
        seg = plan.segment(f"{a}-{b}")
        for m in seg.members:
            net.nodes[m.node].ip_commands.append(f"link set dev {m.ifname} mtu {options.link_mtu}")
    for ex in site.exits:
        node = net.nodes[ex.router]
        own = prefixes[ex.isp]
        node.ospf6.default_originate = True
        node.ospf6.redistribute_kernel.append(f"{anycast(own)}/128")
        foreign = {isp: p for isp, p in prefixes.items() if isp != ex.isp}
        argv = ["python3", "-m", f"agents.{AGENT}", "--ready", READY, "--own", f"{own}={anycast(own)}"]
        for p in foreign.values():
            argv += ["--foreign", f"{p}={anycast(p)}"]
        for i in node.ospf6.interfaces:
            argv += ["--dev", i.name]
        node.services.append(Process(AGENT, argv))
        net.await_kernel_routes.setdefault(ex.router, []).extend(
            [f"{anycast(p)}/128" for p in foreign.values()] + [f"::/0 from {p}" for p in foreign.values()])
        if options.reject:
            access = plan.segment(f"{ex.isp}-{ex.router}")
            ifname = access.member(ex.router).ifname
            allowed = ", ".join([str(own), str(access.subnets[0])])
            node.nft.append(
                f"# tunnel-mesh: a packet whose prefix no exit can take leaves no further (thesis 6.2.1)\n"
                f"table ip6 mhlab_tunnel_{ifname} {{\n"
                f"  counter noexit_{ifname} {{ }}\n"
                f"  chain forward {{\n"
                f"    type filter hook forward priority 0; policy accept;\n"
                f"    oifname \"{ifname}\" ip6 saddr != {{ {allowed} }} counter name noexit_{ifname} "
                f"reject with icmpv6 policy-fail\n"
                f"  }}\n"
                f"}}")
    interior = [r for r in topo.site_routers(site) if r not in {e.router for e in site.exits}]
    for r in interior:  # they reach the nearest exit by the IGP's default
        net.await_kernel_routes.setdefault(r, []).append("::/0")
    net.notes.append(f"site {site.name}: tunnel-mesh - exits announce "
                     + ", ".join(f"{anycast(p)} ({isp})" for isp, p in prefixes.items())
                     + f" in the IGP; internal links at MTU {options.link_mtu}; SRv6 encap.red is the tunnel "
                     "(no ip6ip6 module in these kernels)")


MECHANISM = Mechanism("tunnel-mesh", "a mesh of tunnels between exit routers: a packet reaching the wrong exit "
                      "is tunnelled to an anycast address of its prefix's exit (SRv6 encap.red)", "6.2.1", _apply,
                      options=TunnelMeshOptions, validate=_validate,
                      readiness=(Readiness(AGENT, READY, "tunnel-mesh agent's first synchronisation"),))
