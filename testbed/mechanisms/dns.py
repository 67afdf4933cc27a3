"""``dns``: every address of every site host in the DNS (thesis 6.3.1.1), ordered by weight (6.3.2.1.4).

Stage 2 without the shim: a host with one address per ISP publishes all of them under its name, so an
unmodified external client that finds one address dead tries the next one and a *new* inbound connection
survives an ISP failure.  The order of the answer is the site's inbound traffic-engineering knob: "list
ISP A's address first in x % of the answers".

The server is PowerDNS Authoritative (``pdns_server``, bind backend reading a generated zone file).  No
packaged server orders a whole RRset by weight (knot rotates uniformly, knot's geoip and PowerDNS's
``pickwrandom`` return one address, BIND's ``rrset-order fixed`` is compiled out), so every site host's
AAAA RRset is a PowerDNS LUA record - the supported way to compute an answer - that draws the first ISP
with ``pickwrandom`` (weights per ISP) and returns *all* the host's addresses, that ISP's first and the
others after it in the site's exit order.  ``no-shuffle`` keeps that order on the wire, and the packet and
query caches are off so every query draws again.  Names with a weight also get ``_http._tcp`` SRV records
whose weights are the same percentages, pointing at per-ISP names (``h1.ispa.<zone>``), the other tool the
thesis names.

The authoritative server runs on a host behind an ISP (default: the first host of the transit core, as a
DNS hosting provider would): the names stay resolvable whatever happens to the site's own ISPs, so a
measurement shows the clients' address fallback and nothing else.  Every node's ``/etc/resolv.conf`` is a
per-node file bind-mounted inside the node's private mount namespace (recorded; gone with the namespace),
pointing at that server.  Readiness: the server answers the zone's SOA authoritatively; if ``pdns_server``
exits instead, the deploy fails with the node's name and the daemon's own last words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from ..errors import LabError
from ..netplan import Hook, NetPlan, NodeFile, Process
from ..topology import Site, Topology, addon_def, host_def
from ..wait import WaitTimeout, wait_until
from .contract import FieldProblem, Mechanism, Options

SERVICE = "pdns"
ARGV = ("pdns_server", "--config-dir={node_dir}")  # pdns.conf, named.conf and the zone are in the node folder
RESERVED_TLDS = ("example", "test")  # RFC 2606 / RFC 6761: never delegated, safe for a lab
LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
HOOK = "dns: authoritative server answering, every node's resolver pointed at it"


class DnsOptions(Options):
    """Options of the ``dns`` add-on."""

    zone: str = Field("lab.example", description="the zone every host's name lives in; must end in .example or "
                                                  ".test (reserved names, RFC 2606/6761)")
    server: str | None = Field(None, description="the host behind an ISP (isps[].hosts) that runs the "
                                                 "authoritative server; default: the first host of the transit "
                                                 "core (an ISP without upstreams), else of any ISP")
    ttl: int = Field(0, ge=0, le=86400, description="TTL of every record (0: clients never reuse an answer, "
                                                    "so each connection sees a fresh draw)")
    weights: dict[str, int | dict[str, int]] = Field(
        default_factory=dict,
        description="per site host: the percentage (0-100) of answers that list each ISP's address first. "
                    "`h1: 70` puts the site's first exit ISP first in 70 % of the answers (the others share "
                    "the rest); `h1: {ispa: 70, ispb: 30}` names every ISP (sum 100). Hosts not named: "
                    "every ISP first equally often")

    @field_validator("zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        value = value.rstrip(".").lower()
        labels = value.split(".")
        if len(labels) < 2 or not all(re.fullmatch(LABEL, label) for label in labels):
            raise ValueError(f"{value!r} is not a domain name like 'lab.example'")
        if labels[-1] not in RESERVED_TLDS:
            raise ValueError(f"{value!r} is not under a reserved domain: end it in "
                             f"{' or '.join('.' + t for t in RESERVED_TLDS)}")
        return value

    @field_validator("weights")
    @classmethod
    def _percentages(cls, value: dict[str, int | dict[str, int]]) -> dict[str, int | dict[str, int]]:
        for name, weight in value.items():
            for isp, pct in (weight.items() if isinstance(weight, dict) else [("", weight)]):
                if not 0 <= pct <= 100:
                    raise ValueError(f"{name}{'.' + isp if isp else ''}: {pct} is not a percentage (0-100)")
            if isinstance(weight, dict) and sum(weight.values()) != 100:
                raise ValueError(f"{name}: the ISPs' percentages add up to {sum(weight.values())}, not 100")
        return value


# -- the zone, as data -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Record:
    """One line of the zone file: owner relative to the zone (``@`` = apex), type, data."""

    owner: str
    rtype: str
    data: str


@dataclass
class Zone:
    """The lab's zone: the apex, the server's address, and the records (a mutable list: several sites
    with the add-on share one server and one zone)."""

    name: str
    server: str
    server_address: str
    ttl: int
    records: list[Record] = field(default_factory=list)

    def text(self) -> str:
        """The zone file (the bind backend's format)."""
        lines = [f"$ORIGIN {self.name}.", f"$TTL {self.ttl}",
                 f"@ IN SOA {self.server}.{self.name}. hostmaster.{self.name}. 1 3600 600 86400 {self.ttl}",
                 f"@ IN NS {self.server}.{self.name}."]  # the server's own AAAA is among the ISP hosts
        lines += [f"{r.owner} IN {r.rtype} {r.data}" for r in self.records]
        return "\n".join(lines) + "\n"


def first_weights(weight: int | dict[str, int] | None, isps: list[str]) -> dict[str, float]:
    """Percentage of answers listing each ISP first: an int is the first ISP's share (the rest split it),
    a mapping names them (missing ISPs get 0), None is uniform."""
    if weight is None:
        return {isp: 100 / len(isps) for isp in isps}
    if isinstance(weight, dict):
        return {isp: float(weight.get(isp, 0)) for isp in isps}
    rest = (100 - weight) / (len(isps) - 1) if len(isps) > 1 else 0.0
    return {isp: float(weight) if i == 0 else rest for i, isp in enumerate(isps)}


def ordered_rrset(addresses: dict[str, list[str]], isps: list[str], weights: dict[str, float]) -> str:
    """A PowerDNS LUA AAAA record returning every address: one ISP's first (drawn by weight), the others
    after it in exit order.  ``pickwrandom`` draws with PowerDNS's own random source (``math.random`` in
    a LUA record gets the same seed on every query)."""
    def order(first: str) -> str:
        addrs = [a for isp in [first] + [i for i in isps if i != first] for a in addresses.get(isp, [])]
        return "{" + ", ".join(f"'{a}'" for a in addrs) + "}"

    drawn = [isp for isp in isps if weights[isp] > 0]
    if len(drawn) == 1:
        return f'AAAA "{order(drawn[0])}"'
    table = ", ".join(f"['{isp}'] = {order(isp)}" for isp in drawn)
    draw = ", ".join(f"{{{weights[isp]:g}, '{isp}'}}" for isp in drawn)
    return f'AAAA ";local orders = {{{table}}} return orders[pickwrandom({{{draw}}})]"'


def site_records(net: NetPlan, site: Site, opts: DnsOptions) -> list[Record]:
    """Every host of the site: its name with all its AAAA records (a LUA record ordering them), one name
    per ISP (``h1.ispa``) with that ISP's address, and SRV records for the hosts given a weight."""
    isps = list(dict.fromkeys(ex.isp for ex in site.exits))
    out = []
    for lan in site.lans:
        for ref in lan.hosts:
            host = host_def(ref).name
            addrs = net.plan.addresses(host)
            weights = first_weights(opts.weights.get(host), isps)
            out.append(Record(host, "LUA", ordered_rrset(addrs, isps, weights)))
            for isp in isps:
                out += [Record(f"{host}.{isp}", "AAAA", a) for a in addrs.get(isp, [])]
            if host in opts.weights:
                out += [Record(f"_http._tcp.{host}", "SRV", f"0 {round(weights[isp])} 80 {host}.{isp}")
                        for isp in isps if addrs.get(isp)]
    return out


def isp_records(net: NetPlan) -> list[Record]:
    """Hosts behind the ISPs (servers, clients): their one address each."""
    topo = net.topology
    return [Record(host_def(ref).name, "AAAA", a) for isp in topo.isps for ref in isp.hosts
            for addrs in net.plan.addresses(host_def(ref).name).values() for a in addrs]


# -- validation ------------------------------------------------------------------------------------------

def isp_hosts(topo: Topology) -> list[str]:
    """Hosts behind ISPs, the transit core's (ISPs without upstreams) first."""
    ordered = sorted(topo.isps, key=lambda isp: bool(isp.upstreams))
    return [host_def(ref).name for isp in ordered for ref in isp.hosts]


def server_of(topo: Topology, opts: DnsOptions) -> str | None:
    hosts = isp_hosts(topo)
    return opts.server or (hosts[0] if hosts else None)


def _validate(topo: Topology, site: Site, opts: DnsOptions) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    hosts = isp_hosts(topo)
    if not hosts:
        problems.append(((), "the dns add-on runs its authoritative server on a host behind an ISP, and this lab "
                             "has none: give an ISP (e.g. the core) a host, `hosts: [ns]`, or name one with "
                             "options: {server: NAME}"))
    elif opts.server is not None and opts.server not in hosts:
        problems.append((("options", "server"), f"{opts.server!r} is not a host behind an ISP; those are: "
                                                f"{', '.join(hosts)}"))
    site_hosts = {host_def(ref).name for lan in site.lans for ref in lan.hosts}
    isps = list(dict.fromkeys(ex.isp for ex in site.exits))
    for name, weight in opts.weights.items():
        where = ("options", "weights", name)
        if name not in site_hosts:
            problems.append((where, f"{name!r} is not a host of site {site.name} (its hosts: "
                                    f"{', '.join(sorted(site_hosts)) or 'none'})"))
        for isp in weight if isinstance(weight, dict) else []:
            if isp not in isps:
                problems.append((where + (isp,), f"{isp!r} is not an ISP of site {site.name} ({', '.join(isps)})"))
    problems += _same_server_everywhere(topo, site, opts)
    return problems


def _same_server_everywhere(topo: Topology, site: Site, opts: DnsOptions) -> list[FieldProblem]:
    """Several sites may run the add-on: they share one server and one zone, so they must agree."""
    mine = (opts.zone, server_of(topo, opts), opts.ttl)
    for other in topo.sites:
        if other is site:
            return []
        for ref in other.addons:
            addon = addon_def(ref)
            if addon.mechanism == MECHANISM.name:
                theirs = DnsOptions.model_validate(addon.options)
                if (theirs.zone, server_of(topo, theirs), theirs.ttl) != mine:
                    return [(("options",), f"site {other.name} already runs the dns add-on with zone "
                                           f"{theirs.zone}, server {server_of(topo, theirs)}, ttl {theirs.ttl}: "
                                           "one lab has one zone, so use the same zone, server and ttl")]
    return []


# -- the plan ------------------------------------------------------------------------------------------

def _apply(net: NetPlan, site: Site, opts: DnsOptions) -> None:
    zone = _zone_of(net, opts)
    zone.records += site_records(net, site, opts)
    net.notes.append(f"site {site.name}: every host's addresses published in {zone.name} by PowerDNS on "
                     f"{zone.server}" + (f"; answer order weighted for {', '.join(opts.weights)}"
                                         if opts.weights else "; every ISP first equally often"))


def _zone_of(net: NetPlan, opts: DnsOptions) -> Zone:
    """The lab's zone and its server, set up by the first site that runs the add-on."""
    server = server_of(net.topology, opts)
    node = net.nodes[server]
    for svc in node.services:
        if svc.name == SERVICE:
            return next(f.vars["zone"] for f in node.templates if f.template == "dns/zone.j2")
    zone = Zone(opts.zone, server, net.plan.address(server), opts.ttl, isp_records(net))
    node.templates += [NodeFile("dns/pdns.conf.j2", "pdns.conf", {"zone": zone}),
                       NodeFile("dns/named.conf.j2", "named.conf", {"zone": zone}),
                       NodeFile("dns/zone.j2", f"{zone.name}.zone", {"zone": zone})]
    node.services.append(Process(SERVICE, list(ARGV)))
    for other in net.nodes.values():
        if other.role != "bridge":
            other.templates.append(NodeFile("dns/resolv.conf.j2", "resolv.conf", {"zone": zone}))
    net.hooks.append(Hook(HOOK, lambda lab: _ready(lab, zone)))
    return zone


# -- the runtime ---------------------------------------------------------------------------------------

RESOLV_CONF = "/etc/resolv.conf"
READY_TIMEOUT_S = 15.0


def _ready(lab: Any, zone: Zone) -> None:
    """Wait until the server answers its SOA authoritatively (or fail with its own words), then bind-mount
    every node's resolv.conf over /etc/resolv.conf inside the node (private mount namespace)."""
    node = lab.node(zone.server)
    query = ["kdig", "+time=1", "+retry=0", f"@{zone.server_address}", "SOA", zone.name]

    def answered() -> bool:
        procs = [rec for rec, alive in node.processes() if rec.name == SERVICE]
        if procs and not any(alive for rec, alive in node.processes() if rec.name == SERVICE):
            raise LabError(f"{zone.server}: pdns_server (the dns add-on's authoritative server) exited: "
                           f"{_last_words(node.dir / f'{SERVICE}.out')}")
        out = node.run(query, timeout=5).stdout.lower()  # ";; flags: qr aa rd; query: 1..." (kdig)
        return "status: noerror" in out and " aa" in out.split("flags:", 1)[-1].split(";", 1)[0]

    try:
        wait_until(answered, READY_TIMEOUT_S, 0.05, what=f"{zone.server}: pdns_server answering for {zone.name}")
    except WaitTimeout:
        raise LabError(f"{zone.server}: pdns_server does not answer `{' '.join(query)}` within "
                       f"{READY_TIMEOUT_S:g} s: {_last_words(node.dir / f'{SERVICE}.out')}") from None
    for spec in lab.net.nodes.values():
        if spec.role == "bridge":
            continue
        handle = lab.node(spec.name)
        lab.rundir.record({"kind": "mount", "node": spec.name, "source": str(handle.dir / "resolv.conf"),
                           "target": RESOLV_CONF, "undone_by": "the node's mount namespace ending"})
        handle.run(["mount", "--bind", str(handle.dir / "resolv.conf"), RESOLV_CONF], check=True)


def _last_words(path: Path, lines: int = 6) -> str:
    """The daemon's own message: the last lines of its output, timestamps and banners dropped."""
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no output in {path})"
    useful = [re.sub(r"^\w{3} \d\d \d\d:\d\d:\d\d ", "", line) for line in text if line.strip()]
    return " | ".join(useful[-lines:]) or f"(no output in {path})"


MECHANISM = Mechanism(
    "dns", "every address of every site host in the DNS (PowerDNS), answer order weighted per ISP",
    "6.3.1.1, 6.3.2.1.4", _apply, options=DnsOptions, validate=_validate, role="addon")
