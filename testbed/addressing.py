"""The address plan: ISP aggregates -> one PA /48 per site per ISP -> one /64 per segment -> node addresses.

Deterministic: the same file always gives the same plan (file order decides indices).  Layout:
- each ISP's aggregate (auto: ``2001:db8:NN00::/40``, NN = ISP index + 1); its first /48 is the ISP's own
  infrastructure: links to its customers and upstreams, and the LAN of its single-homed hosts;
- each site gets the next free /48 of every ISP it connects to (its PA prefixes), unless the file says;
- inside a site prefix, LAN number k is subnet ``k+1`` and internal router links are ``f000+j``; every site
  segment carries one /64 from *each* site prefix, so every host has one address per ISP;
- interface identifiers: on point-to-point links the provider side is ``::1`` and the customer ``::2``; on
  LANs routers are ``::1``, ``::2``… and hosts ``::10``, ``::11``… (or their ``iid``).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from .errors import TopologyError, UnknownName
from .mechanisms import Registry
from .topology import Site, Topology, host_def, site_mechanism

Net = ipaddress.IPv6Network
AUTO_BASE = ipaddress.IPv6Network("2001:db8::/32")
PI_POOL = ipaddress.IPv6Network("2001:db8:ff00::/40")
HOST_IID_BASE = 0x10


class UnknownSegment(UnknownName):
    """``AddressPlan.segment(name)`` names no segment of the plan."""

    def __init__(self, name: str, known) -> None:
        super().__init__("segment", name, known)


class UnknownMember(UnknownName):
    """``Segment.member(node)`` names a node not attached to the segment."""

    def __init__(self, segment: str, node: str, known) -> None:
        super().__init__(f"member of segment {segment}:", node, known)


@dataclass(frozen=True)
class Member:
    """One node's attachment to a segment: its interface name and its addresses (with prefix length)."""

    node: str
    ifname: str
    addresses: tuple[ipaddress.IPv6Interface, ...]

    def address_in(self, net: Net) -> ipaddress.IPv6Address | None:
        return next((a.ip for a in self.addresses if a.ip in net), None)


@dataclass(frozen=True)
class Segment:
    """A link (two members, ``p2p``) or a LAN (a bridge, ``lan``) with its /64s, one per prefix it carries."""

    name: str
    kind: str  # "p2p" | "lan"
    owner: str  # ISP or site that numbers it
    subnets: tuple[Net, ...]
    members: tuple[Member, ...]

    def member(self, node: str) -> Member:
        """``node``'s attachment; UnknownMember (listing the members) when it is not on this segment."""
        for m in self.members:
            if m.node == node:
                return m
        raise UnknownMember(self.name, node, [m.node for m in self.members])

    def other(self, node: str) -> Member:
        return next(m for m in self.members if m.node != node)


@dataclass
class AddressPlan:
    """Every prefix and address of a lab, derived from the topology alone."""

    aggregates: dict[str, Net]
    infra: dict[str, Net]
    site_prefixes: dict[str, dict[str, Net]]  # site -> isp -> /48 (insertion order = exits order)
    pi_prefixes: dict[str, Net]
    segments: list[Segment] = field(default_factory=list)
    router_ids: dict[str, str] = field(default_factory=dict)

    def segments_of(self, node: str) -> list[Segment]:
        return [s for s in self.segments if any(m.node == node for m in s.members)]

    def segment(self, name: str) -> Segment:
        """The segment called ``name``; UnknownSegment (listing the segments) when there is none."""
        for seg in self.segments:
            if seg.name == name:
                return seg
        raise UnknownSegment(name, [s.name for s in self.segments])

    def addresses(self, node: str) -> dict[str, list[str]]:
        """A node's addresses grouped by the ISP whose space they come from (``{"ispa": ["2001:db8:…"]}``)."""
        out: dict[str, list[str]] = {}
        for seg in self.segments_of(node):
            for addr in seg.member(node).addresses:
                out.setdefault(self.isp_of(addr.ip) or "pi", []).append(str(addr.ip))
        return out

    def address(self, node: str, isp: str | None = None) -> str:
        """The node's first address, or its first one from ``isp``'s space."""
        for name, addrs in self.addresses(node).items():
            if isp is None or name == isp:
                return addrs[0]
        raise KeyError(f"{node} has no address from {isp}")

    def isp_of(self, addr: ipaddress.IPv6Address) -> str | None:
        return next((isp for isp, agg in self.aggregates.items() if addr in agg), None)

    def as_dict(self) -> dict:
        """A JSON-able view (``mhlab plan --json``)."""
        return {
            "aggregates": {k: str(v) for k, v in self.aggregates.items()},
            "site_prefixes": {s: {i: str(p) for i, p in d.items()} for s, d in self.site_prefixes.items()},
            "pi_prefixes": {s: str(p) for s, p in self.pi_prefixes.items()},
            "segments": [{"name": s.name, "kind": s.kind, "owner": s.owner,
                          "subnets": [str(n) for n in s.subnets],
                          "members": [{"node": m.node, "ifname": m.ifname,
                                       "addresses": [str(a) for a in m.addresses]} for m in s.members]}
                         for s in self.segments],
            "router_ids": self.router_ids,
        }


def _iface(subnet: Net, iid: int) -> ipaddress.IPv6Interface:
    return ipaddress.IPv6Interface((int(subnet.network_address) + iid, subnet.prefixlen))


class SpaceExhausted(ValueError):
    """A parent prefix has no sub-prefix left."""


class _Numberer:
    """Hands out the next /64 of an owner's /48 (and next /48 of an aggregate), in call order."""

    def __init__(self) -> None:
        self.next: dict[Net, int] = {}

    def take(self, parent: Net, new_prefix: int, start: int = 0) -> Net:
        index = self.next.get(parent, start)
        self.next[parent] = index + 1
        count = 1 << (new_prefix - parent.prefixlen)
        if index >= count:
            raise SpaceExhausted(f"{parent} has no /{new_prefix} left")
        return Net((int(parent.network_address) + (index << (128 - new_prefix)), new_prefix))


def _ifname(node: str, toward: str, used: dict[str, set[str]]) -> str:
    """Interfaces are named after what they face (``ispa``, ``lan``): ``ip route`` then reads like the map."""
    names = used.setdefault(node, set())
    name, n = toward[:15], 1
    while name in names:
        n += 1
        name = f"{toward[:13]}{n}"
    names.add(name)
    return name


def build_plan(topo: Topology, registry: Registry | None = None) -> AddressPlan:
    """Derive the whole plan; raises TopologyError when a space runs out or prefixes collide.

    Sites' mechanisms (from ``registry``, default the discovered ones) may ask for a PI /48 and choose
    their hosts' interface identifiers.
    """
    doc = topo.source
    aggregates: dict[str, Net] = {}
    taken = [isp.network for isp in topo.isps if isp.network]
    auto = 1
    for i, isp in enumerate(topo.isps):
        if isp.network:
            aggregates[isp.name] = isp.network
            continue
        while True:
            cand = Net((int(AUTO_BASE.network_address) + (auto << 88), 40))
            auto += 1
            if not any(cand.overlaps(t) for t in taken) and not cand.overlaps(PI_POOL):
                break
        aggregates[isp.name] = cand
        taken.append(cand)
    infra = {name: Net((agg.network_address, 48)) for name, agg in aggregates.items()}
    nums = _Numberer()
    site_prefixes: dict[str, dict[str, Net]] = {}
    fixed = {ipaddress.IPv6Network(e.prefix) for s in topo.sites for e in s.exits if e.prefix}
    for s_i, site in enumerate(topo.sites):
        site_prefixes[site.name] = {}
        for e_i, ex in enumerate(site.exits):
            if ex.isp in site_prefixes[site.name]:
                continue
            if ex.prefix:
                if not Net(ex.prefix).subnet_of(aggregates[ex.isp]):
                    raise TopologyError([doc.problem(("sites", s_i, "exits", e_i, "prefix"),
                                                     f"{ex.prefix} is not inside {ex.isp}'s aggregate "
                                                     f"{aggregates[ex.isp]}: a PA prefix comes from the ISP's "
                                                     "space")])
                site_prefixes[site.name][ex.isp] = Net(ex.prefix)
                continue
            agg = aggregates[ex.isp]
            while True:
                try:
                    cand = nums.take(agg, 48, start=1)
                except SpaceExhausted:
                    raise TopologyError([doc.problem(("sites", s_i, "exits", e_i),
                                                     f"{ex.isp}'s aggregate {agg} has no /48 left")]) from None
                if cand not in fixed and cand != infra[ex.isp]:
                    break
            site_prefixes[site.name][ex.isp] = cand
    pi_prefixes = {}
    pi_index = 0
    for site in topo.sites:
        if site.pi_prefix:
            pi_prefixes[site.name] = Net(site.pi_prefix)
        elif site_mechanism(topo, site, registry)[0].pi_prefix:
            pi_prefixes[site.name] = Net((int(PI_POOL.network_address) + (pi_index << 80), 48))
            pi_index += 1
    plan = AddressPlan(aggregates, infra, site_prefixes, pi_prefixes)
    used: dict[str, set[str]] = {}
    try:
        _number_isps(topo, plan, nums, used)
        for site in topo.sites:
            _number_site(topo, site, plan, nums, used, registry)
    except SpaceExhausted as exc:
        raise TopologyError([doc.problem(("isps",), f"address space exhausted: {exc}")]) from None
    for i, name in enumerate(_routers(topo)):
        plan.router_ids[name] = f"10.255.{(i + 1) // 256}.{(i + 1) % 256}"
    return plan


def _routers(topo: Topology) -> list[str]:
    return [i.name for i in topo.isps] + [r for s in topo.sites for r in topo.site_routers(s)]


def _p2p(plan: AddressPlan, nums: _Numberer, used: dict, owner: str, provider: str, customer: str) -> None:
    """A provider-numbered point-to-point link: provider ``::1``, customer ``::2``."""
    subnet = nums.take(plan.infra[owner], 64)
    plan.segments.append(Segment(
        f"{provider}-{customer}", "p2p", owner, (subnet,),
        (Member(provider, _ifname(provider, customer, used), (_iface(subnet, 1),)),
         Member(customer, _ifname(customer, provider, used), (_iface(subnet, 2),)))))


def _number_isps(topo: Topology, plan: AddressPlan, nums: _Numberer, used: dict) -> None:
    for isp in topo.isps:
        for up in isp.upstreams:
            _p2p(plan, nums, used, up, up, isp.name)
        if isp.hosts:
            subnet = nums.take(plan.infra[isp.name], 64)
            members = [Member(isp.name, _ifname(isp.name, "hosts", used), (_iface(subnet, 1),))]
            for k, ref in enumerate(isp.hosts):
                h = host_def(ref)
                iid = int(ipaddress.IPv6Address(h.iid)) if h.iid else HOST_IID_BASE + k
                members.append(Member(h.name, _ifname(h.name, isp.name, used), (_iface(subnet, iid),)))
            plan.segments.append(Segment(f"{isp.name}-hosts", "lan", isp.name, (subnet,), tuple(members)))


def _number_site(topo: Topology, site: Site, plan: AddressPlan, nums: _Numberer, used: dict,
                 registry: Registry | None) -> None:
    mech, options = site_mechanism(topo, site, registry)
    prefixes = list(plan.site_prefixes[site.name].values())
    if site.name in plan.pi_prefixes:
        prefixes = [plan.pi_prefixes[site.name]] + prefixes
    for ex in site.exits:
        _p2p(plan, nums, used, ex.isp, ex.isp, ex.router)
    for j, (a, b) in enumerate(topo.internal_links(site)):
        subnets = tuple(Net((int(p.network_address) + ((0xF000 + j) << 64), 64)) for p in prefixes)
        plan.segments.append(Segment(
            f"{a}-{b}", "p2p", site.name, subnets,
            (Member(a, _ifname(a, b, used), tuple(_iface(n, 1) for n in subnets)),
             Member(b, _ifname(b, a, used), tuple(_iface(n, 2) for n in subnets)))))
    for k, lan in enumerate(site.lans):
        subnets = tuple(Net((int(p.network_address) + ((k + 1) << 64), 64)) for p in prefixes)
        members = [Member(r, _ifname(r, lan.name, used), tuple(_iface(n, i + 1) for n in subnets))
                   for i, r in enumerate(topo.lan_routers(site, lan))]
        for h_i, ref in enumerate(lan.hosts):
            h = host_def(ref)
            iid = int(ipaddress.IPv6Address(h.iid)) if h.iid else HOST_IID_BASE + h_i
            iids = mech.host_iids(site, options, h.name, subnets) if mech.host_iids and not h.iid \
                else (iid,) * len(subnets)
            members.append(Member(h.name, _ifname(h.name, lan.name, used),
                                  tuple(_iface(n, i) for n, i in zip(subnets, iids))))
        plan.segments.append(Segment(f"{site.name}-{lan.name}", "lan", site.name, subnets, tuple(members)))
