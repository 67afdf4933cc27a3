"""Topology files: YAML -> a typed, validated model of ISPs, multihomed sites, routers, hosts and LANs.

Every problem is reported with file:line:field and nothing is built from an invalid file.  Structural checks
(unknown fields, types, ranges) come from the pydantic models; cross references (names, upstreams, prefixes)
are checked afterwards so that all problems of a file are reported at once.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from .errors import Problem, TopologyError
from .yamlmarks import MarkedDoc, load_marked, unknown_field

NAME_PATTERN = r"^[a-zA-Z][a-zA-Z0-9]{0,9}$"
Name = Annotated[str, Field(pattern=NAME_PATTERN,
                            description="letters and digits, starting with a letter, at most 10")]
Asn = Annotated[int, Field(ge=1, le=4294967294, description="autonomous system number (not 0, not 23456)")]
DOC_PREFIX = ipaddress.IPv6Network("2001:db8::/32")
SERVICES = ("http", "iperf3")


class Strict(BaseModel):
    """Unknown fields are errors: a typo must not silently become a default."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _doc_prefix(value: str | None, min_len: int, max_len: int) -> ipaddress.IPv6Network | None:
    if value is None:
        return None
    try:
        net = ipaddress.IPv6Network(str(value), strict=True)
    except ValueError as exc:
        raise ValueError(f"not an IPv6 prefix with its host bits zero ({exc})") from None
    if not net.subnet_of(DOC_PREFIX):
        raise ValueError(f"{net} is outside the documentation prefix 2001:db8::/32; labs only use that")
    if not min_len <= net.prefixlen <= max_len:
        raise ValueError(f"prefix length /{net.prefixlen} is not between /{min_len} and /{max_len}")
    return net


class HostDef(Strict):
    """A host; ``iid`` overrides its interface identifier (the low 64 bits) in every prefix."""

    name: Name
    iid: str | None = Field(None, description="interface identifier such as '::10' (overrides the plan)")
    services: list[Literal["http", "iperf3"]] = Field(
        default_factory=list, description="servers started on the host: http (port 80), iperf3 (port 5201)")

    @field_validator("iid")
    @classmethod
    def _iid(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            iid = int(ipaddress.IPv6Address(value))
        except ValueError:
            raise ValueError(f"{value!r} is not an interface identifier like '::10'") from None
        if iid == 0 or iid >= 1 << 64:
            raise ValueError(f"{value!r} must be non-zero and fit in 64 bits")
        return value


HostRef = Annotated[Name | HostDef, Field(description="a host name, or a mapping with name/iid/services")]


def host_def(ref: str | HostDef) -> HostDef:
    return ref if isinstance(ref, HostDef) else HostDef(name=ref)


class BgpTimers(Strict):
    """BGP timers for every session of the lab; the defaults are FRR's, with a 1 s connect retry."""

    keepalive: int = Field(60, ge=1, le=21845)
    hold: int = Field(180, ge=3, le=65535)
    connect: int = Field(1, ge=1, le=65535, description="connect retry; FRR's 120 s stalls recovery")
    bfd: bool = Field(False, description="tie every eBGP session to BFD (fast failure detection)")
    bfd_interval_ms: int = Field(100, ge=10, le=60000)
    bfd_multiplier: int = Field(3, ge=2, le=255)


class Isp(Strict):
    """A provider network (one router named like the ISP).  The transit core is an ISP without upstreams."""

    name: Name
    asn: Asn
    aggregate: str | None = Field(None, description="the ISP's aggregate inside 2001:db8::/32 (/33-/44); "
                                                    "auto-assigned when omitted")
    upstreams: list[Name] = Field(default_factory=list, description="ISPs this one buys transit from")
    hosts: list[HostRef] = Field(default_factory=list, description="single-homed hosts on a LAN behind it")

    @field_validator("aggregate")
    @classmethod
    def _aggregate(cls, value: str | None) -> str | None:
        return value if _doc_prefix(value, 33, 44) is None else str(_doc_prefix(value, 33, 44))

    @property
    def network(self) -> ipaddress.IPv6Network | None:
        return _doc_prefix(self.aggregate, 33, 44)


class Exit(Strict):
    """An exit router of a site and the ISP it connects to; the ISP delegates ``prefix`` (a /48) to the site."""

    router: Name
    isp: Name
    prefix: str | None = Field(None, description="the PA /48 delegated by the ISP (auto when omitted)")

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str | None) -> str | None:
        return value if _doc_prefix(value, 48, 48) is None else str(_doc_prefix(value, 48, 48))


class Lan(Strict):
    """A site LAN (a Linux bridge): its hosts, the site routers on it, and the hosts' default gateway."""

    name: Name
    hosts: list[HostRef] = Field(default_factory=list)
    routers: list[Name] | None = Field(None, description="site routers on this LAN (default: all exits)")
    gateway: Name | None = Field(None, description="the hosts' default router (default: the first router)")


class Site(Strict):
    """A multihomed site: exit routers to several ISPs, LANs of hosts, and the mechanism it runs."""

    name: Name
    asn: Asn | None = Field(None, description="the site's AS for eBGP with its ISPs (default 65100+index)")
    mechanism: str = Field("none", description="multihoming mechanism plug-in (see `mhlab mechanisms`)")
    options: dict[str, Any] = Field(default_factory=dict, description="options for the mechanism")
    pi_prefix: str | None = Field(None, description="provider-independent /48 (mechanism pi-bgp)")
    exits: list[Exit] = Field(min_length=1, description="exit routers, one or more per ISP")
    routers: list[Name] = Field(default_factory=list, description="internal (non-exit) routers of the site")
    lans: list[Lan] = Field(default_factory=list)
    links: list[tuple[Name, Name]] | None = Field(
        None, description="internal router-to-router links (default: full mesh of exit routers)")

    @field_validator("pi_prefix")
    @classmethod
    def _pi(cls, value: str | None) -> str | None:
        return value if _doc_prefix(value, 48, 48) is None else str(_doc_prefix(value, 48, 48))


class Topology(Strict):
    """A whole lab: ISPs (with the transit core), multihomed sites, and BGP timers."""

    name: Name = Field(description="the lab's name (run directory, `mhlab inspect NAME`)")
    description: str = ""
    isps: list[Isp] = Field(min_length=1)
    sites: list[Site] = Field(default_factory=list)
    bgp: BgpTimers = Field(default_factory=BgpTimers)
    _source: MarkedDoc | None = PrivateAttr(None)

    @property
    def source(self) -> MarkedDoc:
        return self._source or MarkedDoc({}, "<memory>")

    def isp(self, name: str) -> Isp:
        return next(i for i in self.isps if i.name == name)

    def site_routers(self, site: Site) -> list[str]:
        """Exit routers first (in file order, without repeats), then the internal ones."""
        return list(dict.fromkeys([e.router for e in site.exits] + list(site.routers)))

    def lan_routers(self, site: Site, lan: Lan) -> list[str]:
        return list(lan.routers) if lan.routers is not None else list(dict.fromkeys(e.router for e in site.exits))

    def internal_links(self, site: Site) -> list[tuple[str, str]]:
        if site.links is not None:
            return [tuple(link) for link in site.links]
        exits = list(dict.fromkeys(e.router for e in site.exits))
        return [(a, b) for i, a in enumerate(exits) for b in exits[i + 1:]]


def json_schema() -> dict[str, Any]:
    """The published JSON schema of topology files (``mhlab schema``)."""
    return Topology.model_json_schema()


def parse_topology(doc: MarkedDoc, known_mechanisms: set[str] | None = None) -> Topology:
    """Validate a loaded document; raise TopologyError listing every problem with its line."""
    if not isinstance(doc.data, dict):
        raise TopologyError([doc.problem((), "the top level must be a mapping (name:, isps:, sites:)")])
    try:
        topo = Topology.model_validate(doc.data)
    except ValidationError as exc:
        raise TopologyError([_pydantic_problem(doc, err) for err in exc.errors()]) from None
    topo._source = doc
    problems = _cross_check(topo, doc, known_mechanisms)
    if problems:
        raise TopologyError(problems)
    return topo


def load_topology(path: str | Path, known_mechanisms: set[str] | None = None) -> Topology:
    """Read and validate a topology file."""
    return parse_topology(load_marked(path), known_mechanisms)


def _pydantic_problem(doc: MarkedDoc, err: dict[str, Any]) -> Problem:
    # pydantic adds the union member tried ('str', 'HostDef') and 'function-after' to locations: drop them.
    loc = tuple(p for p in err["loc"] if isinstance(p, int) or p in _field_names())
    message = err["msg"]
    if err["type"] == "extra_forbidden":
        message = unknown_field(Topology, err["loc"])
    elif err["type"] == "string_pattern_mismatch":
        message = f"{err.get('input')!r} is not a valid name (letters and digits, start with a letter, " \
                  f"at most 10)"
    return doc.problem(loc if err["type"] != "extra_forbidden" else tuple(err["loc"]), message)


def _field_names() -> set[str]:
    names: set[str] = set()
    for model in (Topology, Isp, Site, Exit, Lan, HostDef, BgpTimers):
        names.update(model.model_fields)
    return names


def _cross_check(topo: Topology, doc: MarkedDoc, mechanisms: set[str] | None) -> list[Problem]:
    """References between parts of the file: names unique, ISPs known, prefixes disjoint, gateways on the LAN."""
    problems: list[Problem] = []
    seen: dict[str, tuple] = {}

    def claim(name: str, path: tuple, what: str) -> None:
        """Names share one space: they become Mininet nodes and interface names."""
        if name in seen and seen[name] != path:
            problems.append(doc.problem(path, f"duplicate name {name!r} (also used at line "
                                              f"{doc.line_of(seen[name])})"))
        else:
            seen.setdefault(name, path)

    isp_names = {i.name for i in topo.isps}
    for i, isp in enumerate(topo.isps):
        claim(isp.name, ("isps", i, "name"), "isp")
        for j, up in enumerate(isp.upstreams):
            if up not in isp_names:
                problems.append(doc.problem(("isps", i, "upstreams", j), f"unknown ISP {up!r}"))
            elif up == isp.name:
                problems.append(doc.problem(("isps", i, "upstreams", j), "an ISP cannot be its own upstream"))
        for j, h in enumerate(isp.hosts):
            claim(host_def(h).name, ("isps", i, "hosts", j), "host")
    problems += _upstream_cycles(topo, doc)
    problems += _aggregates_disjoint(topo, doc)
    site_prefixes: list[tuple[ipaddress.IPv6Network, tuple]] = []
    for s, site in enumerate(topo.sites):
        claim(site.name, ("sites", s, "name"), "site")
        if mechanisms is not None and site.mechanism not in mechanisms:
            problems.append(doc.problem(("sites", s, "mechanism"), f"unknown mechanism {site.mechanism!r}; "
                                        f"known: {', '.join(sorted(mechanisms))}"))
        routers = set(topo.site_routers(site))
        for e, ex in enumerate(site.exits):
            path = ("sites", s, "exits", e)
            if ex.isp not in isp_names:
                problems.append(doc.problem(path + ("isp",), f"unknown ISP {ex.isp!r}; the site needs an ISP "
                                            f"from isps: ({', '.join(sorted(isp_names))})"))
                continue
            if (ex.router, ex.isp) in {(x.router, x.isp) for x in site.exits[:e]}:
                problems.append(doc.problem(path, f"{ex.router} already connects to {ex.isp}"))
            if ex.prefix:
                site_prefixes.append((ipaddress.IPv6Network(ex.prefix), path + ("prefix",)))
        exit_routers = {ex.router for ex in site.exits}
        for r in topo.site_routers(site):
            claim(r, ("sites", s, "exits") if r in exit_routers else ("sites", s, "routers"), "router")
        for l_i, (a, b) in enumerate(topo.internal_links(site)):
            if a == b:
                problems.append(doc.problem(("sites", s, "links", l_i), f"a link from {a} to itself"))
            for end in (a, b):
                if end not in routers:
                    problems.append(doc.problem(("sites", s, "links", l_i), f"dangling link: {end!r} is not a "
                                                f"router of site {site.name!r} ({', '.join(sorted(routers))}); "
                                                "declare internal routers under routers:"))
        for l, lan in enumerate(site.lans):
            lpath = ("sites", s, "lans", l)
            claim(f"{site.name}/{lan.name}", lpath + ("name",), "lan")
            lan_routers = topo.lan_routers(site, lan)
            for k, r in enumerate(lan.routers or []):
                if r not in routers:
                    problems.append(doc.problem(lpath + ("routers", k), f"{r!r} is not a router of site "
                                                f"{site.name!r} (routers: {', '.join(sorted(routers))})"))
            if lan.gateway is not None and lan.gateway not in lan_routers:
                problems.append(doc.problem(lpath + ("gateway",), f"gateway {lan.gateway!r} is not a router on "
                                            f"LAN {lan.name!r} ({', '.join(lan_routers) or 'none'})"))
            if not lan_routers:
                problems.append(doc.problem(lpath, "a LAN needs at least one router"))
            for h, ref in enumerate(lan.hosts):
                claim(host_def(ref).name, lpath + ("hosts", h), "host")
    for pref, path in site_prefixes:
        for other, opath in site_prefixes:
            if opath < path and pref.overlaps(other):
                problems.append(doc.problem(path, f"{pref} overlaps {other} (line {doc.line_of(opath)})"))
    return problems


def _aggregates_disjoint(topo: Topology, doc: MarkedDoc) -> list[Problem]:
    problems = []
    for i, a in enumerate(topo.isps):
        for j, b in enumerate(topo.isps[:i]):
            if a.network and b.network and a.network.overlaps(b.network):
                problems.append(doc.problem(("isps", i, "aggregate"), f"{a.network} overlaps {b.name}'s "
                                            f"aggregate {b.network}"))
    return problems


def _upstream_cycles(topo: Topology, doc: MarkedDoc) -> list[Problem]:
    ups = {i.name: set(i.upstreams) for i in topo.isps}
    problems = []
    for i, isp in enumerate(topo.isps):
        stack, seen = list(ups[isp.name]), set()
        while stack:
            n = stack.pop()
            if n == isp.name:
                problems.append(doc.problem(("isps", i, "upstreams"), f"upstream chain of {isp.name!r} loops "
                                            "back to itself"))
                break
            if n in seen or n not in ups:
                continue
            seen.add(n)
            stack.extend(ups[n])
    return problems
