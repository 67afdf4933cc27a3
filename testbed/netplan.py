"""The lab's desired state: nodes, links, addresses, routes, BGP, filters and processes, as plain data.

Built from the topology and address plan plus each site's mechanism; rendered to files by ``render`` and
carried out by ``lab``.  Nothing here touches the kernel, so ``mhlab render`` shows exactly what will run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from .addressing import AddressPlan, build_plan
from .mechanisms import Mechanism, Registry
from .runninglab import Condition
from .topology import Site, Topology, host_def, site_addons, site_mechanism

Role = Literal["router", "host", "bridge"]
SERVICE_ARGV = {
    "http": ["python3", "-m", "http.server", "--bind", "::", "80"],
    "iperf3": ["iperf3", "--server", "--port", "5201"],
}


@dataclass
class Route:
    """A kernel route; ``src`` makes it source-specific (``ip -6 route add DST from SRC …``)."""

    dst: str
    via: str | None = None
    dev: str | None = None
    src: str | None = None
    metric: int | None = None
    kind: str = "unicast"  # or "blackhole"
    why: str = ""


@dataclass
class OspfIface:
    """An interface in the site IGP: internal links are active point-to-point adjacencies, LANs passive
    (their prefixes are announced, no adjacency forms over a host LAN)."""

    name: str
    passive: bool = False


@dataclass
class Ospf6:
    """FRR ospf6d on a site router (the site IGP: destinations inside the site).  What goes into it beyond
    the interfaces' prefixes is each mechanism's choice: ``default_originate`` (the exit announces a default
    while its ISP's BGP default is in its RIB) and ``redistribute_kernel`` (kernel host routes, e.g.
    tunnel-mesh's anycast addresses)."""

    router_id: str
    interfaces: list[OspfIface] = field(default_factory=list)
    area: str = "0.0.0.0"
    hello_s: int = 1
    dead_s: int = 3
    default_originate: bool = False
    redistribute_kernel: list[str] = field(default_factory=list)


@dataclass
class Neighbor:
    """An eBGP session seen from one side; ``export`` lists the prefixes this side may announce."""

    peer: str
    address: str
    remote_as: int
    relation: Literal["upstream", "customer", "internal"]  # what the peer is to us (internal = iBGP)
    export: list[str] = field(default_factory=list)  # prefixes (exact or 'P le N') allowed out
    default_originate: bool = False
    accept: list[str] = field(default_factory=list)  # prefixes allowed in ('any' = everything)
    next_hop_self: bool = False  # iBGP without an IGP: the peer must reach what we pass on through us
    # FRR `set` clauses of a route-map applied on top of the prefix lists: traffic engineering knobs
    # (``as-path prepend 65100 65100``, ``community no-export additive`` out; ``local-preference 200`` in)
    set_out: list[str] = field(default_factory=list)
    set_in: list[str] = field(default_factory=list)


@dataclass
class Bgp:
    asn: int
    router_id: str
    networks: list[str] = field(default_factory=list)
    neighbors: list[Neighbor] = field(default_factory=list)


@dataclass
class Process:
    """A long-running program a node needs (daemon, agent, server); started and recorded by the lab."""

    name: str
    argv: list[str]
    ready: str | None = None  # a path that exists once the process serves ("{node_dir}/x.sock")
    env: dict[str, str] | None = None
    # the daemon's own dry run of its config (``bird -p -c …``): the runtime runs it before starting any
    # service and refuses the deploy, with its output, when it exits non-zero
    check: list[str] | None = None
    # the lab's supervisor (testbed.supervise) restarts it when it dies, and journals each restart
    restart: bool = False


@dataclass(frozen=True)
class NodeFile:
    """A per-node file a lab kind or a mechanism adds: a template of ``templates/``, its path in the node's
    folder, and what that template reads as ``vars`` (each file its own, so two mechanisms on one router
    never overwrite each other's variables)."""

    template: str
    path: str
    vars: dict[str, Any] = field(default_factory=dict)


@dataclass
class Iface:
    name: str
    segment: str
    addresses: list[str]


@dataclass
class Node:
    name: str
    role: Role
    owner: str  # the ISP or site it belongs to
    ifaces: list[Iface] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    sysctls: dict[str, str] = field(default_factory=dict)
    bgp: Bgp | None = None
    nft: list[str] = field(default_factory=list)  # lines of an nftables ruleset (a full table each)
    # RFC 2827/3704 ingress filtering: customer interface -> source prefixes accepted from it (the rest is
    # dropped and counted in the named nftables counter ``ingress_<interface>``)
    ingress: dict[str, list[str]] = field(default_factory=dict)
    # what the ingress filter does with the rest: "drop", or "reject" (ICMPv6 code 5, policy-fail)
    ingress_action: str = "drop"
    ospf6: Ospf6 | None = None

    @property
    def counters(self) -> list[str]:
        """Named nftables counters worth showing (one per ingress filter)."""
        return [ingress_counter(ifname) for ifname in self.ingress]
    services: list[Process] = field(default_factory=list)
    frr_daemons: list[str] = field(default_factory=list)
    mechanism: str = ""
    ip_commands: list[str] = field(default_factory=list)  # extra `ip -batch` lines (e.g. mptcp endpoints)
    templates: list[NodeFile] = field(default_factory=list)  # other kinds' and mechanisms' per-node files


@dataclass
class Link:
    a: str
    a_if: str
    b: str
    b_if: str
    segment: str


@dataclass(frozen=True)
class Hook:
    """A step a lab kind or mechanism needs at runtime after services start (e.g. bootstrapping a private
    I2P network from the routers' first identities).  ``run(lab)`` may start recorded processes."""

    name: str
    run: Callable[[Any], None]


@dataclass
class NetPlan:
    topology: Any  # a Topology, or another kind's model
    plan: AddressPlan
    nodes: dict[str, Node] = field(default_factory=dict)
    links: list[Link] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    hooks: list[Hook] = field(default_factory=list)
    # per fault kind, defaults a mechanism needs (``{"rate-limit": {"burst": "80kb"}}``); faults read them
    fault_defaults: dict[str, dict[str, Any]] = field(default_factory=dict)
    # what the runtime reads instead of the model: the BGP timers every session uses (keepalive, hold,
    # connect, bfd; None without BGP), router -> prefixes its BGP table must hold before the lab is ready,
    # and the address spaces a host address is chosen by (keys of ``plan.addresses(host)``: ISPs, "pi")
    bgp_timers: Any = None
    await_routes: dict[str, list[str]] = field(default_factory=dict)
    address_spaces: list[str] = field(default_factory=list)
    # the family of the nodes' `ip -batch` files: "inet6" for an IPv6-only lab (lets source rules such as
    # ``rule add from 2001:db8::/48 ...`` parse), None when a lab also numbers IPv4 (the i2p kind)
    ip_family: str | None = "inet6"
    # router -> kernel routes (``DST`` or ``DST from SRC``) its main table must hold before the lab is
    # ready: the site IGP's prefixes, a mechanism's routes that follow the IGP
    await_kernel_routes: dict[str, list[str]] = field(default_factory=dict)
    # what the sites' mechanisms ask of the running lab before deploy returns (``Mechanism.conditions``), in
    # site order; the kind decides when to poll them
    conditions: list[Condition] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.topology.name

    def routers(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.role == "router"]

    def hosts(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.role == "host"]


ROUTER_SYSCTLS = {
    "net.ipv6.conf.all.forwarding": "1",
    "net.ipv6.conf.all.accept_dad": "0",
    "net.ipv6.conf.default.accept_dad": "0",
    "net.ipv6.conf.all.accept_ra": "0",
    "net.ipv6.conf.default.accept_ra": "0",
    "net.ipv6.conf.all.keep_addr_on_down": "1",
    "net.ipv6.conf.all.ignore_routes_with_linkdown": "1",
    # a router takes its routes from its configuration and BGP, never from a neighbour's Redirect
    "net.ipv6.conf.all.accept_redirects": "0",
    "net.ipv6.conf.default.accept_redirects": "0",
}
# ... nor sends one: a site router forwarding a packet back onto the LAN it came from (the gateway handing an
# ISP-B-sourced packet to the other exit router) would otherwise send the host an ICMPv6 Redirect (RFC 4861
# 8.2), and the host's next packets would bypass the gateway - the path the mechanism chose.  Linux has no
# IPv6 send_redirects sysctl (only net.ipv4.conf.*.send_redirects; checked on 6.18), so the routers drop
# their own outgoing Redirects (ICMPv6 type 137) in nftables and count them.
ROUTER_NFT = ["""table ip6 mhlab_no_redirects {
  counter redirects_suppressed { }
  chain output {
    type filter hook output priority 0; policy accept;
    icmpv6 type nd-redirect counter name redirects_suppressed drop
  }
}"""]
HOST_SYSCTLS = {
    "net.ipv6.conf.all.accept_dad": "0",
    "net.ipv6.conf.default.accept_dad": "0",
    "net.ipv6.conf.all.accept_ra": "0",
    "net.ipv6.conf.default.accept_ra": "0",
    "net.ipv6.conf.all.keep_addr_on_down": "1",
}


def build_netplan(topo: Topology, plan: AddressPlan | None = None, registry: Registry | None = None) -> NetPlan:
    """Base network (addresses, eBGP, PA announcements, ingress filters), then each site's mechanism
    (from ``registry``, default the discovered ones): its routes and services, readiness, fault defaults."""
    plan = plan or build_plan(topo, registry)
    net = NetPlan(topo, plan)
    _nodes_and_links(net)
    _isp_bgp(net)
    for site in topo.sites:
        _site_base(net, site)
        _site_igp(net, site)
        for mech, options in [site_mechanism(topo, site, registry)] + site_addons(topo, site, registry):
            mech.apply(net, site, options)
            _contributions(net, site, mech, options)
    _without_idle_bgp(net)
    _runtime_needs(net)
    return net


def _without_idle_bgp(net: NetPlan) -> None:
    """A router left without BGP (a site's interior router unless its mechanism gave it sessions, or one whose
    BGP another daemon speaks) runs no bgpd, nor bfdd, which serves only BGP here."""
    for node in net.routers():
        if node.bgp is None:
            node.frr_daemons = [d for d in node.frr_daemons if d not in ("bgpd", "bfdd")]


def _runtime_needs(net: NetPlan) -> None:
    """What deploy and the checks read: timers, the DFZ's aggregates at every ISP, the address spaces."""
    topo, plan = net.topology, net.plan
    net.bgp_timers = topo.bgp
    aggregates = [str(p) for p in plan.aggregates.values()]
    net.await_routes = {isp.name: list(aggregates) for isp in topo.isps}
    net.address_spaces = [isp.name for isp in topo.isps] + (["pi"] if plan.pi_prefixes else [])


def _contributions(net: NetPlan, site: Site, mech: Mechanism, options: Any) -> None:
    """What a mechanism states as data: the ready path of its services, its fault defaults, and the
    conditions the running lab must meet."""
    nodes = [net.nodes[n] for n in net.topology.site_routers(site)] + \
            [net.nodes[host_def(ref).name] for lan in site.lans for ref in lan.hosts]
    for check in mech.readiness:
        for node in nodes:
            for svc in node.services:
                if svc.name == check.service and svc.ready is None:
                    svc.ready = check.path
    for kind, defaults in mech.fault_defaults.items():
        net.fault_defaults.setdefault(kind, {}).update(defaults)
    if mech.conditions:
        net.conditions += mech.conditions(net, site, options)


def _nodes_and_links(net: NetPlan) -> None:
    topo, plan = net.topology, net.plan
    # no staticd: the blackhole anchors of announced prefixes are kernel routes (setup.ip), which zebra reads
    # into its RIB like any route, so bgpd's `network` finds them - one daemon (~8 MB) less per router
    daemons = ["zebra", "bgpd"] + (["bfdd"] if topo.bgp.bfd else [])  # bgpd's `bfd` needs bfdd
    for isp in topo.isps:
        net.nodes[isp.name] = Node(isp.name, "router", isp.name, sysctls=dict(ROUTER_SYSCTLS),
                                   frr_daemons=list(daemons), nft=list(ROUTER_NFT))
        for ref in isp.hosts:
            h = host_def(ref)
            net.nodes[h.name] = Node(h.name, "host", isp.name, sysctls=dict(HOST_SYSCTLS))
    for site in topo.sites:
        for r in topo.site_routers(site):
            net.nodes[r] = Node(r, "router", site.name, sysctls=dict(ROUTER_SYSCTLS),
                                frr_daemons=list(daemons), mechanism=site.mechanism, nft=list(ROUTER_NFT))
        for lan in site.lans:
            for ref in lan.hosts:
                h = host_def(ref)
                net.nodes[h.name] = Node(h.name, "host", site.name, sysctls=dict(HOST_SYSCTLS),
                                         mechanism=site.mechanism)
    for ref in [r for isp in topo.isps for r in isp.hosts] + \
               [r for s in topo.sites for lan in s.lans for r in lan.hosts]:
        h = host_def(ref)
        net.nodes[h.name].services = [Process(s, list(SERVICE_ARGV[s])) for s in h.services]
    for seg in plan.segments:
        for m in seg.members:
            net.nodes[m.node].ifaces.append(Iface(m.ifname, seg.name, [str(a) for a in m.addresses]))
        if seg.kind == "p2p":
            a, b = seg.members
            net.links.append(Link(a.node, a.ifname, b.node, b.ifname, seg.name))
        else:
            bridge = bridge_name(seg.name)
            net.nodes[bridge] = Node(bridge, "bridge", seg.owner)
            for m in seg.members:
                net.links.append(Link(m.node, m.ifname, bridge, m.node, seg.name))
            # hosts on a LAN route through the gateway (or the only router there)
            _host_defaults(net, seg)


def bridge_name(segment: str) -> str:
    """LAN bridges are nodes of their own (a namespace holding a Linux bridge), named after the segment."""
    return f"br:{segment}"


def _host_defaults(net: NetPlan, seg) -> None:
    topo = net.topology
    gateway = None
    for site in topo.sites:
        for lan in site.lans:
            if f"{site.name}-{lan.name}" == seg.name:
                gateway = lan.gateway or topo.lan_routers(site, lan)[0]
    if gateway is None:  # an ISP's host LAN: the ISP router is the gateway
        gateway = seg.members[0].node
    gw = seg.member(gateway)
    for m in seg.members:
        if net.nodes[m.node].role == "host":
            net.nodes[m.node].routes.append(Route("::/0", via=str(gw.addresses[0].ip), dev=m.ifname,
                                                  why=f"default via the LAN gateway {gateway}"))


def _isp_bgp(net: NetPlan) -> None:
    """ISPs: announce only their aggregate upstream (PA: no site more-specifics leak), everything downstream."""
    topo, plan = net.topology, net.plan
    for isp in topo.isps:
        node = net.nodes[isp.name]
        agg = str(plan.aggregates[isp.name])
        node.bgp = Bgp(isp.asn, plan.router_ids[isp.name], networks=[agg])
        node.routes.append(Route(agg, kind="blackhole", why="anchor for announcing the aggregate"))
        for up in isp.upstreams:
            seg = plan.segment(f"{up}-{isp.name}")
            node.bgp.neighbors.append(Neighbor(up, str(seg.member(up).addresses[0].ip), topo.isp(up).asn,
                                               "upstream", export=[agg], accept=["any"]))
        for other in topo.isps:
            if isp.name in other.upstreams:
                seg = plan.segment(f"{isp.name}-{other.name}")
                node.bgp.neighbors.append(Neighbor(other.name, str(seg.member(other.name).addresses[0].ip),
                                                   other.asn, "customer", export=["any"],
                                                   accept=[f"{plan.aggregates[other.name]}"]))


def _site_base(net: NetPlan, site) -> None:
    """Each exit router peers with its ISP and announces the PA /48 that ISP delegated; the ISP filters."""
    topo, plan = net.topology, net.plan
    site_asn = topo.site_asn(site)
    for ex in site.exits:
        router, isp = net.nodes[ex.router], net.nodes[ex.isp]
        seg = plan.segment(f"{ex.isp}-{ex.router}")
        pa = str(plan.site_prefixes[site.name][ex.isp])
        if router.bgp is None:
            router.bgp = Bgp(site_asn, plan.router_ids[ex.router])
        router.bgp.networks.append(pa)
        router.routes.append(Route(pa, kind="blackhole", why=f"anchor for announcing {pa} to {ex.isp}"))
        router.bgp.neighbors.append(Neighbor(ex.isp, str(seg.member(ex.isp).addresses[0].ip),
                                             topo.isp(ex.isp).asn, "upstream", export=[pa],
                                             accept=["::/0"]))
        isp.bgp.neighbors.append(Neighbor(ex.router, str(seg.member(ex.router).addresses[0].ip), site_asn,
                                          "customer", export=["::/0"], default_originate=True, accept=[pa]))
        isp.ingress[seg.member(ex.isp).ifname] = [pa, str(seg.subnets[0])]
        isp.ingress_action = topo.isp(ex.isp).ingress


def _site_igp(net: NetPlan, site) -> None:
    """The site IGP (``Topology.site_igp``): ospf6d on every site router, one area, point-to-point
    adjacencies over the internal links and the LANs passive, so every site /64 is known everywhere.  No
    default route goes into it here: whether an exit announces one is the routing mechanism's decision
    (destination-only routing needs it; a source-specific mechanism must not let it override the source)."""
    topo, plan = net.topology, net.plan
    if topo.site_igp(site) != "ospf6":
        return
    routers = topo.site_routers(site)
    inside = [s for s in plan.segments if s.owner == site.name]
    for r in routers:
        node = net.nodes[r]
        node.frr_daemons.append("ospf6d")
        ifaces = [OspfIface(seg.member(r).ifname, passive=seg.kind == "lan")
                  for seg in inside if any(m.node == r for m in seg.members)]
        node.ospf6 = Ospf6(plan.router_ids[r], ifaces)
    for r in routers:
        net.await_kernel_routes.setdefault(r, []).extend(
            str(n) for seg in inside if not any(m.node == r for m in seg.members) for n in seg.subnets)


def ingress_counter(ifname: str) -> str:
    return f"ingress_{ifname}"


def ingress_table(ifname: str) -> str:
    return f"mhlab_ingress_{ifname}"
