"""``policy``: outbound traffic engineering inside a PA site (thesis 6.3.2.1.5) - an add-on.

With PA addresses the source address picks the ISP, so the site steers outbound traffic by steering each
host's source address selection: the RFC 3484/6724 policy table (prefix, precedence, label), extended by the
thesis with a protocol and port range, distributed to every host of the site by DHCPv6 (preferred over RAs:
one server for the whole site, and the table arrives whole).

- the server: dnsmasq on one site router (``server``, default the first LAN's gateway) answers
  Information-Requests with RFC 7078 ``OPTION_ADDRSEL`` (84) holding one ``OPTION_ADDRSEL_TABLE`` (85) per
  row, the port/protocol rows in ``OPTION_VENDOR_OPTS`` (17, enterprise 32473, sub-option 1; see
  ``agents/policy/wire.py``) and ``OPTION_INFORMATION_REFRESH_TIME`` (32) = ``refresh_s``.  RFC 8415 makes
  600 s the least refresh a client accepts; the lab's clients accept what the server says, so a changed
  policy reaches every host within ``refresh_s``.
- the client (``agents/policy/client.py``) in every site host asks for 84/17/32 in its Option Request and
  applies what it gets: ``ip addrlabel`` (the kernel's source selection, so unmodified clients follow), a
  per-host ``/etc/gai.conf`` bind-mounted in the host's mount namespace (getaddrinfo's destination order),
  and for port rows nftables SNAT to the host's address in the row's source prefix (a socket has chosen
  its source before the port is known to any table, so the source is rewritten on the way out; the routing
  mechanism's source routes then take it out through the matching ISP, past its ingress filter).

Rules name the ISP whose prefix is the source (``isp``) or a source prefix inside the site (``src``);
``split`` divides a destination prefix into 2^bits slices handed to the ISPs by weight (the policy table
matches prefixes, so a weight is met to 1/2^bits).  The table sent replaces the host's whole default table
(RFC 7078), so the RFC 6724 default rows are always included.  Each ISP router counts the TCP SYNs it gets
from each site customer (nft counter ``syn_out_<interface>``): new outbound connections per ISP.
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Literal

from pydantic import Field

from agents.policy.table import Policy
from agents.policy.wire import PROTOCOLS

from ..addressing import build_plan
from ..netplan import NetPlan, Process
from ..topology import Site, Topology, host_def
from .contract import FieldProblem, Mechanism, Options, Readiness

SERVER_READY = "{node_dir}/dhcp6-policy.pid"
CLIENT_READY = "{node_dir}/policy.json"
# RFC 6724 section 2.1's default table (prefix, precedence, label): sent along, since a table replaces it
DEFAULT_ROWS = (("::1/128", 50, 0), ("::/0", 40, 1), ("::ffff:0:0/96", 35, 4), ("2002::/16", 30, 2),
                ("2001::/32", 5, 5), ("fc00::/7", 3, 13), ("::/96", 1, 3), ("fec0::/10", 1, 11), ("3ffe::/16", 1, 12))
SOURCE_LABEL_BASE = 100  # the site prefix of the i-th ISP carries label 100+i
MAX_OPTION = 330  # octets of one option dnsmasq can take from an options-file line (measured: 338)
PORTS = re.compile(r"^(\d{1,5})(?:-(\d{1,5}))?$")


class Rule(Options):
    """One row: traffic to ``dst`` (optionally only ``proto`` to ``ports``) leaves with a source from ``isp``'s
    site prefix (or from ``src``)."""

    dst: str = Field("::/0", description="destination prefix the row matches")
    isp: str | None = Field(None, description="an ISP of this site: the source comes from its site prefix")
    src: str | None = Field(None, description="or a source prefix inside one of the site's prefixes")
    precedence: int = Field(45, ge=0, le=255, description="RFC 6724 precedence of dst (8 bits in RFC 7078)")
    proto: Literal["tcp", "udp"] | None = Field(None, description="only this transport (the thesis's extension)")
    ports: str | None = Field(None, description="destination port or range 'LO-HI' (needs proto)")


class Split(Options):
    """Destinations in ``dst`` split between ISPs by weight (percent), by prefix."""

    dst: str = Field(description="destination prefix to split")
    weights: dict[str, int] = Field(description="ISP -> percent of the destination slices (sum 100)")
    bits: int = Field(4, ge=1, le=6, description="dst is cut into 2^bits slices (weights met to 1/2^bits)")


class PolicyOptions(Options):
    """Options of the ``policy`` add-on."""

    server: str | None = Field(None, description="site router running the DHCPv6 server (default: the first "
                                                 "LAN's gateway); it must be on every LAN of the site")
    refresh_s: int = Field(10, ge=1, le=86400, description="INFORMATION_REFRESH_TIME sent to hosts: a policy "
                                                          "change reaches every host within it (RFC 8415's "
                                                          "600 s floor is not enforced in the lab)")
    rules: list[Rule] = Field(default_factory=list, description="policy rows, most specific first")
    split: Split | None = Field(None, description="a destination prefix divided between ISPs by weight")


def server_router(topology: Topology, site: Site, opts: PolicyOptions) -> str:
    if opts.server:
        return opts.server
    lan = site.lans[0]
    return lan.gateway or topology.lan_routers(site, lan)[0]


def _net(text: str) -> ipaddress.IPv6Network | None:
    try:
        return ipaddress.IPv6Network(text, strict=True)
    except ValueError:
        return None


def port_range(text: str) -> tuple[int, int] | None:
    """``"80"`` -> (80, 80), ``"8000-8999"`` -> (8000, 8999); None when not a valid range."""
    m = PORTS.match(text)
    if not m:
        return None
    lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
    return (lo, hi) if 1 <= lo <= hi <= 65535 else None


def _site_prefixes(topology: Topology, site: Site) -> dict[str, ipaddress.IPv6Network] | None:
    """ISP -> the site's /48 from it, as the address plan will number it (None if the plan cannot be built:
    the topology's own problems are reported elsewhere)."""
    try:
        plan = build_plan(topology)
    except Exception:  # noqa: BLE001 - any structural problem is reported by the topology's own checks
        return None
    return {isp: ipaddress.IPv6Network(str(p)) for isp, p in plan.site_prefixes[site.name].items()}


def _validate(topology: Topology, site: Site, opts: PolicyOptions) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    isps = [e.isp for e in site.exits]
    routers = topology.site_routers(site)
    if opts.server is not None and opts.server not in routers:
        problems.append((("options", "server"), f"{opts.server} is not a router of site {site.name} "
                                                f"({', '.join(routers)})"))
    elif site.lans:
        server = server_router(topology, site, opts)
        for k, lan in enumerate(site.lans):
            if server not in topology.lan_routers(site, lan):
                problems.append((("lans", k), f"LAN {lan.name} has no link to the DHCPv6 server {server} "
                                              "(the lab runs no relay): put it on every LAN or pick another"))
    prefixes = _site_prefixes(topology, site)
    for i, rule in enumerate(opts.rules):
        at = ("options", "rules", i)
        if _net(rule.dst) is None:
            problems.append((at + ("dst",), f"{rule.dst!r} is not an IPv6 prefix (address/length, host bits zero)"))
        if (rule.isp is None) == (rule.src is None):
            problems.append((at, "give exactly one of isp: (an ISP of the site) or src: (a site prefix)"))
        if rule.isp is not None and rule.isp not in isps:
            problems.append((at + ("isp",), f"{rule.isp} is not an ISP of site {site.name} ({', '.join(isps)})"))
        if rule.src is not None:
            src = _net(rule.src)
            if src is None:
                problems.append((at + ("src",), f"{rule.src!r} is not an IPv6 prefix"))
            elif prefixes is not None and not any(src.subnet_of(p) for p in prefixes.values()):
                problems.append((at + ("src",), f"{src} is not inside the site's prefixes "
                                                f"({', '.join(str(p) for p in prefixes.values())})"))
        if rule.ports is not None:
            if port_range(rule.ports) is None:
                problems.append((at + ("ports",), f"{rule.ports!r} is not a port range LO-HI with "
                                                  "1 <= LO <= HI <= 65535"))
            if rule.proto is None:
                problems.append((at + ("proto",), "ports need a proto (tcp or udp)"))
    if opts.split is not None:
        at = ("options", "split")
        if _net(opts.split.dst) is None:
            problems.append((at + ("dst",), f"{opts.split.dst!r} is not an IPv6 prefix"))
        elif _net(opts.split.dst).prefixlen + opts.split.bits > 128:
            problems.append((at + ("bits",), f"a /{_net(opts.split.dst).prefixlen} has no {opts.split.bits} "
                                             "more bits"))
        for isp, weight in opts.split.weights.items():
            if isp not in isps:
                problems.append((at + ("weights", isp), f"{isp} is not an ISP of site {site.name}"))
            if not 0 <= weight <= 100:
                problems.append((at + ("weights", isp), f"weight {weight} is outside 0..100"))
        if sum(opts.split.weights.values()) != 100:
            problems.append((at + ("weights",), f"weights add up to {sum(opts.split.weights.values())}, not 100"))
    if not problems and prefixes is not None:
        size = max(len(o.to_bytes()) for o in Policy.from_json(
            policy_table({isp: str(p) for isp, p in prefixes.items()}, opts)).options())
        if size > MAX_OPTION:
            problems.append((("options",), f"the policy needs a {size}-octet DHCPv6 option; dnsmasq sends at most "
                                           f"{MAX_OPTION} (its option lines hold 1024 characters): fewer rows"))
    return problems


def split_slices(dst: ipaddress.IPv6Network, weights: dict[str, int], bits: int) -> list[tuple[ipaddress.IPv6Network, str]]:
    """The 2^bits slices of ``dst`` handed out by weight (largest remainder), each ISP's slices together."""
    n = 1 << bits
    shares = {isp: w * n / 100 for isp, w in weights.items()}
    counts = {isp: int(s) for isp, s in shares.items()}
    for isp in sorted(shares, key=lambda i: shares[i] - counts[i], reverse=True)[:n - sum(counts.values())]:
        counts[isp] += 1
    slices = list(dst.subnets(prefixlen_diff=bits))
    out, k = [], 0
    for isp, count in counts.items():
        out += [(s, isp) for s in slices[k:k + count]]
        k += count
    return out


def policy_table(pa: dict[str, str], opts: PolicyOptions) -> dict:
    """What the server distributes, given the site's prefix from each ISP: ``rows`` [prefix, precedence,
    label] (site prefixes, rules, split slices merged where adjacent, RFC 6724 defaults) and ``ports``
    [prefix, precedence, label, protocol, first, last]; plus ``refresh``."""
    label = {isp: SOURCE_LABEL_BASE + i for i, isp in enumerate(pa)}
    rows = [[prefix, 40, label[isp]] for isp, prefix in pa.items()]
    ports = []
    for rule in opts.rules:
        lab = label[rule.isp] if rule.isp else _src_label(rule.src, rows)
        if rule.proto is None:
            rows.append([rule.dst, rule.precedence, lab])
        else:
            lo, hi = port_range(rule.ports) if rule.ports else (1, 65535)
            ports.append([rule.dst, rule.precedence, lab, PROTOCOLS[rule.proto], lo, hi])
    if opts.split is not None:
        slices = split_slices(ipaddress.IPv6Network(opts.split.dst), opts.split.weights, opts.split.bits)
        for isp in opts.split.weights:
            for piece in ipaddress.collapse_addresses(s for s, owner in slices if owner == isp):
                rows.append([str(piece), 45, label[isp]])
    taken = {r[0] for r in rows}
    rows += [list(r) for r in DEFAULT_ROWS if r[0] not in taken]  # a rule for ::/0 replaces the default row
    return {"rows": rows, "ports": ports, "refresh": opts.refresh_s}


def _src_label(src: str, rows: list) -> int:
    """A ``src:`` prefix gets a label of its own (a row of its own), so only addresses in it match."""
    lab = SOURCE_LABEL_BASE + 50 + sum(1 for r in rows if r[2] >= SOURCE_LABEL_BASE + 50)
    rows.append([src, 40, lab])
    return lab


def _apply(net: NetPlan, site: Site, opts: PolicyOptions) -> None:
    topo, plan = net.topology, net.plan
    server = server_router(topo, site, opts)
    table = policy_table({isp: str(p) for isp, p in plan.site_prefixes[site.name].items()}, opts)
    ifaces = [plan.segment(f"{site.name}-{lan.name}").member(server).ifname for lan in site.lans]
    argv = ["python3", "-m", "agents.policy.server", "--dir", "{node_dir}", "--policy", json.dumps(table)]
    for ifname in ifaces:
        argv += ["--iface", ifname]
    net.nodes[server].services.append(Process("dhcp6-policy", argv))
    for lan in site.lans:
        seg = plan.segment(f"{site.name}-{lan.name}")
        for ref in lan.hosts:
            host = host_def(ref).name
            net.nodes[host].services.append(Process("policy-client", [
                "python3", "-m", "agents.policy.client", "--iface", seg.member(host).ifname, "--dir", "{node_dir}"]))
    for ex in site.exits:
        ifname = plan.segment(f"{ex.isp}-{ex.router}").member(ex.isp).ifname
        net.nodes[ex.isp].nft.append(syn_counter_table(ifname))
    net.notes.append(f"site {site.name}: DHCPv6 policy server on {server} ({len(table['rows'])} policy rows, "
                     f"{len(table['ports'])} port rows, refresh {opts.refresh_s} s); hosts apply it with ip "
                     "addrlabel, gai.conf and nftables SNAT")


def syn_counter_table(ifname: str, direction: str = "out") -> str:
    """An nftables table on an ISP router counting TCP SYNs - new connections - on a customer interface:
    ``out`` those the site sends (``iifname``), ``in`` those sent towards the site (``oifname``)."""
    match = "iifname" if direction == "out" else "oifname"
    return (f"table ip6 {syn_table(ifname, direction)} {{\n  counter {syn_counter(ifname, direction)} {{ }}\n"
            f"  chain forward {{\n    type filter hook forward priority -10; policy accept;\n"
            f"    {match} \"{ifname}\" tcp flags & (syn | ack) == syn counter name {syn_counter(ifname, direction)}\n"
            f"  }}\n}}")


def syn_table(ifname: str, direction: str = "out") -> str:
    return f"mhlab_syn_{direction}_{ifname}"


def syn_counter(ifname: str, direction: str = "out") -> str:
    return f"syn_{direction}_{ifname}"


MECHANISM = Mechanism(
    "policy", "Outbound traffic engineering: an RFC 6724 policy table with port rows, sent by DHCPv6 "
              "(RFC 7078) to every host of the site", "6.3.2.1.5", _apply, options=PolicyOptions,
    validate=_validate, role="addon",
    readiness=(Readiness("dhcp6-policy", SERVER_READY, "DHCPv6 policy server pid file"),
               Readiness("policy-client", CLIENT_READY, "address-selection policy applied")))
