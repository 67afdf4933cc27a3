"""Topology files: YAML -> a typed, validated model of ISPs, multihomed sites, routers, hosts and LANs.

Every problem is reported with file:line:field and nothing is built from an invalid file.  Structural checks
(unknown fields, types, ranges) come from the pydantic models; cross references (names, upstreams, prefixes)
are checked afterwards so that all problems of a file are reported at once.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any, Iterable, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from .errors import Problem, TopologyError, UnknownName
from .mechanisms import Mechanism, Options, Registry, discovered
from .yamlmarks import MarkedDoc, load_marked, unknown_field

NAME_PATTERN = r"^[a-zA-Z][a-zA-Z0-9]{0,9}$"
Name = Annotated[str, Field(pattern=NAME_PATTERN,
                            description="letters and digits, starting with a letter, at most 10")]
AS_TRANS = 23456
PRIVATE_ASNS = ((64512, 65534), (4200000000, 4294967294))  # RFC 6996
# RFC 5398's documentation ASNs (64496-64511, 65536-65551) stay valid, like 2001:db8::/32 for prefixes
RESERVED_ASNS = ((65535, 65535, "reserved (RFC 7300)"), (65552, 131071, "reserved by IANA"),
                 (AS_TRANS, AS_TRANS, "AS_TRANS (RFC 6793), which only stands in for a 4-byte ASN"))


def _asn(value: int) -> int:
    for low, high, why in RESERVED_ASNS:
        if low <= value <= high:
            private = " or ".join(f"{a}-{b}" for a, b in PRIVATE_ASNS)
            raise ValueError(f"ASN {value} is {why}; use a private ASN ({private})")
    return value


Asn = Annotated[int, Field(ge=1, le=4294967294, description="autonomous system number: not 0, 23456 (AS_TRANS), "
                           "65535 or 65552-131071 (reserved); private 64512-65534 and 4200000000-4294967294"),
                AfterValidator(_asn)]
SITE_ASN_BASE = 65100  # a site without asn: gets SITE_ASN_BASE + its index
DOC_PREFIX = ipaddress.IPv6Network("2001:db8::/32")
SERVICES = ("http", "iperf3")


class UnknownIsp(UnknownName):
    """``Topology.isp(name)`` names no ISP of the lab."""

    def __init__(self, name: str, known) -> None:
        super().__init__("ISP", name, known)


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
    """BGP timers for every session of the lab; the defaults are FRR's, with a 2 s connect retry.

    The connect retry is how long bgpd lets one TCP connect try before it abandons it and starts another
    (and, after a failed one, how long it waits; a peer whose address becomes reachable is tried at once).
    FRR's 120 s stalls recovery after a link flap.  1 s is too short: the SYN's first retransmission is due
    at 1 s, and bgpd runs the timers that expired before the I/O that became ready in the same wake-up, so on a
    loaded host, where bgpd runs late, attempt after attempt can be abandoned just as it completes.  2 s
    still sends a SYN every second (a new try's, then its retransmission) but gives each one a second more
    to be answered and handled; 3 s would leave a try whose SYN and retransmission went out while the far end
    was still down silent until 3 s (benchmarks/soak_flap.py --bgp-connect compares)."""

    keepalive: int = Field(60, ge=1, le=21845)
    hold: int = Field(180, ge=3, le=65535)
    connect: int = Field(2, ge=1, le=65535, description="connect retry (s): how long one TCP connect try "
                         "lives; FRR's 120 s stalls recovery, 1 s can abandon try after try on a loaded host")
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
    ingress: Literal["drop", "reject"] = Field(
        "drop", description="what the ingress filter does with a customer packet whose source the ISP did not "
        "delegate: drop it silently (RFC 2827), or reject it with ICMPv6 Destination Unreachable code 5 "
        "(source address failed ingress/egress policy, RFC 4443) so the host learns; counted either way")

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


class Addon(Strict):
    """A stage-2 part a site runs on top of its routing mechanism, with that add-on's own options."""

    mechanism: str = Field(description="an add-on mechanism (role addon in `mhlab mechanisms`)")
    options: dict[str, Any] = Field(default_factory=dict, description="options for the add-on, checked by "
                                    "its options model when the file is parsed")


AddonRef = Annotated[str | Addon, Field(description="an add-on's name, or a mapping with mechanism/options")]


def addon_def(ref: str | Addon) -> Addon:
    return ref if isinstance(ref, Addon) else Addon(mechanism=ref)


class Site(Strict):
    """A multihomed site: exit routers to several ISPs, LANs of hosts, and the mechanism it runs."""

    name: Name
    asn: Asn | None = Field(None, description="the site's AS for eBGP with its ISPs (default 65100+index)")
    mechanism: str = Field("none", description="multihoming mechanism plug-in (see `mhlab mechanisms`)")
    options: dict[str, Any] = Field(default_factory=dict, description="options for the mechanism, checked by "
                                    "the mechanism's options model when the file is parsed")
    addons: list[AddonRef] = Field(default_factory=list, description="stage-2 parts on top of the routing "
                                   "mechanism (DNS, exit path cache, deprecation...), applied in this order")
    pi_prefix: str | None = Field(None, description="provider-independent /48 (mechanism pi-bgp)")
    exits: list[Exit] = Field(min_length=1, description="exit routers, one or more per ISP")
    routers: list[Name] = Field(default_factory=list, description="internal (non-exit) routers of the site")
    lans: list[Lan] = Field(default_factory=list)
    links: list[tuple[Name, Name]] | None = Field(
        None, description="internal router-to-router links (default: full mesh of exit routers)")
    igp: Literal["ospf6", "none"] = Field(
        "none", description="the site's interior routing for destinations inside the site: ospf6 (FRR ospf6d on "
        "every site router, internal links active, LANs passive; needed by interior routers and several LANs "
        "unless the mechanism brings its own IGP) or none (connected routes only, the default)")

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
        """The ISP called ``name``; UnknownIsp (listing the lab's ISPs) when there is none."""
        for isp in self.isps:
            if isp.name == name:
                return isp
        raise UnknownIsp(name, [i.name for i in self.isps])

    def site_asn(self, site: Site) -> int:
        """The site's AS: its ``asn:``, else SITE_ASN_BASE + its index in the file."""
        return site.asn or SITE_ASN_BASE + self.sites.index(site)

    def with_mechanism(self, mechanism: str, registry: Registry | None = None) -> "Topology":
        """A copy whose sites all run ``mechanism``; a site keeps its options only when it already ran that
        mechanism (options belong to one mechanism)."""
        sites = [s.model_copy(update={"mechanism": mechanism, "options": s.options if s.mechanism == mechanism
                                      else {}}) for s in self.sites]
        return self.variant(registry, sites=sites)

    def variant(self, registry: Registry | None = None, **changes: Any) -> "Topology":
        """A copy with some fields replaced (``topo.variant(name="x")``, ``sites=[...]``), validated again
        like the file was, and keeping the file's line marks so errors still point into it."""
        data = self.model_copy(update=changes).model_dump()
        try:
            new = Topology.model_validate(data)
        except ValidationError as exc:
            raise TopologyError([_pydantic_problem(self.source, err) for err in exc.errors()]) from None
        new._source = self._source
        problems = _cross_check(new, new.source, _registry(registry))
        if problems:
            raise TopologyError(problems)
        return new

    def site_routers(self, site: Site) -> list[str]:
        """Exit routers first (in file order, without repeats), then the internal ones."""
        return list(dict.fromkeys([e.router for e in site.exits] + list(site.routers)))

    def lan_routers(self, site: Site, lan: Lan) -> list[str]:
        return list(lan.routers) if lan.routers is not None else list(dict.fromkeys(e.router for e in site.exits))

    def site_igp(self, site: Site) -> str:
        """The site's IGP (``igp:``): an explicit choice, so labs written before it existed keep their
        routing (some mechanisms bring their own IGP: sadr-igp's babeld, sadr-bgp's iBGP)."""
        return site.igp

    def internal_links(self, site: Site) -> list[tuple[str, str]]:
        if site.links is not None:
            return [tuple(link) for link in site.links]
        exits = list(dict.fromkeys(e.router for e in site.exits))
        return [(a, b) for i, a in enumerate(exits) for b in exits[i + 1:]]


def _registry(registry: Registry | Iterable[str] | None) -> Registry:
    """The mechanisms a file may use: the discovered ones, a given registry, or those of some names."""
    if registry is None:
        return discovered()
    if isinstance(registry, Registry):
        return registry
    return discovered().only(registry)


def json_schema(registry: Registry | None = None) -> dict[str, Any]:
    """The published JSON schema of topology files (``mhlab schema``), with every mechanism's options."""
    reg = _registry(registry)
    schema = Topology.model_json_schema()
    defs = schema.setdefault("$defs", {})
    site = defs["Site"]
    site["properties"]["mechanism"]["enum"] = _names(reg, "routing")
    addon = defs["Addon"]
    addon["properties"]["mechanism"]["enum"] = _names(reg, "addon")
    default = Site.model_fields["mechanism"].default
    branches: dict[str, list] = {"routing": [], "addon": []}
    for mech in reg:
        options = mech.options.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(options.pop("$defs", {}))
        options["description"] = f"options of mechanism {mech.name}: {mech.summary}"
        defs[f"options.{mech.name}"] = options
        cond: dict[str, Any] = {"properties": {"mechanism": {"const": mech.name}}}
        if mech.name != default or mech.role == "addon":
            cond["required"] = ["mechanism"]
        branches[mech.role].append({"if": cond, "then": {"properties": {
            "options": {"$ref": f"#/$defs/options.{mech.name}"}}}})
    site["allOf"] = branches["routing"]
    if branches["addon"]:
        addon["allOf"] = branches["addon"]
    return schema


def parse_topology(doc: MarkedDoc, registry: Registry | Iterable[str] | None = None) -> Topology:
    """Validate a loaded document; raise TopologyError listing every problem with its line.

    ``registry`` is the mechanisms sites may use (default: the discovered ones); every site's mechanism
    must be one of them and its ``options:`` must fit that mechanism's options model.
    """
    if not isinstance(doc.data, dict):
        raise TopologyError([doc.problem((), "the top level must be a mapping (name:, isps:, sites:)")])
    try:
        topo = Topology.model_validate(doc.data)
    except ValidationError as exc:
        raise TopologyError([_pydantic_problem(doc, err) for err in exc.errors()]) from None
    topo._source = doc
    problems = _cross_check(topo, doc, _registry(registry))
    if problems:
        raise TopologyError(problems)
    return topo


def load_topology(path: str | Path, registry: Registry | Iterable[str] | None = None) -> Topology:
    """Read and validate a topology file."""
    return parse_topology(load_marked(path), registry)


def site_mechanism(topo: Topology, site: Site, registry: Registry | None = None) -> tuple[Mechanism, Options]:
    """The site's mechanism and its parsed options (TopologyError at the site's fields when invalid)."""
    reg = _registry(registry)
    s = topo.sites.index(site)
    mech = reg.get(site.mechanism)
    try:
        return mech, mech.parse_options(site.options)
    except ValidationError as exc:
        raise TopologyError(_option_problems(topo.source, s, mech, exc)) from None


def site_addons(topo: Topology, site: Site, registry: Registry | None = None) -> list[tuple[Mechanism, Options]]:
    """The site's add-ons with their parsed options, in file order."""
    reg = _registry(registry)
    s = topo.sites.index(site)
    out = []
    for k, ref in enumerate(site.addons):
        addon = addon_def(ref)
        mech = reg.get(addon.mechanism)
        try:
            out.append((mech, mech.parse_options(addon.options)))
        except ValidationError as exc:
            raise TopologyError(_option_problems(topo.source, s, mech, exc, ("addons", k, "options"))) from None
    return out


def _pydantic_problem(doc: MarkedDoc, err: dict[str, Any]) -> Problem:
    # pydantic adds the union member tried ('str', 'HostDef') and 'function-after' to locations: drop them.
    loc = tuple(p for p in err["loc"] if isinstance(p, int) or p in _field_names())
    message = err["msg"]
    if err["type"] == "extra_forbidden":
        message = unknown_field(Topology, err["loc"])
    elif err["type"] == "string_pattern_mismatch":
        message = f"{err.get('input')!r} is not a valid name (letters and digits, start with a letter, " \
                  f"at most 10)"
    elif err["type"] == "value_error":
        message = message.removeprefix("Value error, ")
    return doc.problem(loc if err["type"] != "extra_forbidden" else tuple(err["loc"]), message)


def _option_problems(doc: MarkedDoc, s: int, mech: Mechanism, exc: ValidationError,
                     where: tuple = ("options",)) -> list[Problem]:
    """A site's options that its mechanism's model rejects, located at ``sites.N.options.X`` (or an
    add-on's, at ``sites.N.addons.K.options.X``)."""
    known = list(mech.options.model_fields)
    problems = []
    for err in exc.errors():
        loc = ("sites", s) + where + tuple(err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = f"unknown option {err['loc'][-1]!r} of mechanism {mech.name}; " \
                      f"known: {', '.join(known) or 'none (options: {})'}"
        problems.append(doc.problem(loc, message))
    return problems


def _field_names() -> set[str]:
    names: set[str] = set()
    for model in (Topology, Isp, Site, Exit, Lan, HostDef, BgpTimers, Addon):
        names.update(model.model_fields)
    return names


def _cross_check(topo: Topology, doc: MarkedDoc, registry: Registry) -> list[Problem]:
    """References between parts of the file: names unique, ISPs known, prefixes disjoint, gateways on the LAN,
    ASNs distinct, mechanisms known and their options valid."""
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
    problems += _asns_distinct(topo, doc)
    site_prefixes: list[tuple[ipaddress.IPv6Network, tuple]] = []
    for s, site in enumerate(topo.sites):
        claim(site.name, ("sites", s, "name"), "site")
        problems += _mechanism_problems(topo, doc, s, registry)
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


def _mechanism_problems(topo: Topology, doc: MarkedDoc, s: int, registry: Registry) -> list[Problem]:
    """The site's mechanism exists, its options fit the mechanism's model, and the mechanism's own checks pass."""
    site = topo.sites[s]
    if site.mechanism not in registry:
        return [doc.problem(("sites", s, "mechanism"), f"unknown mechanism {site.mechanism!r}; "
                            f"known: {', '.join(sorted(registry.names()))}")]
    mech = registry.get(site.mechanism)
    if mech.role != "routing":
        return [doc.problem(("sites", s, "mechanism"), f"{mech.name} is an add-on: list it under addons: and name "
                            f"a routing mechanism here ({', '.join(_names(registry, 'routing'))})")]
    try:
        options = mech.parse_options(site.options)
    except ValidationError as exc:
        return _option_problems(doc, s, mech, exc)
    problems = [doc.problem(("sites", s) + tuple(path), message)
                for path, message in mech.validate(topo, site, options)]
    return problems + _addon_problems(topo, doc, s, registry)


def _names(registry: Registry, role: str) -> list[str]:
    return sorted(m.name for m in registry if m.role == role)


def _addon_problems(topo: Topology, doc: MarkedDoc, s: int, registry: Registry) -> list[Problem]:
    """Each add-on exists, is an add-on, appears once, and its options and own checks pass."""
    site, problems, seen = topo.sites[s], [], set()
    for k, ref in enumerate(site.addons):
        addon, path = addon_def(ref), ("sites", s, "addons", k)
        if addon.mechanism not in registry:
            problems.append(doc.problem(path, f"unknown add-on {addon.mechanism!r}; known: "
                                              f"{', '.join(_names(registry, 'addon')) or 'none'}"))
            continue
        mech = registry.get(addon.mechanism)
        if mech.role != "addon":
            problems.append(doc.problem(path, f"{mech.name} is a routing mechanism: a site names one under "
                                              f"mechanism:; add-ons are {', '.join(_names(registry, 'addon')) or 'none'}"))
            continue
        if mech.name in seen:
            problems.append(doc.problem(path, f"add-on {mech.name} is listed twice"))
            continue
        seen.add(mech.name)
        try:
            options = mech.parse_options(addon.options)
        except ValidationError as exc:
            problems += _option_problems(doc, s, mech, exc, ("addons", k, "options"))
            continue
        problems += [doc.problem(path + tuple(p), message) for p, message in mech.validate(topo, site, options)]
    return problems


def _asns_distinct(topo: Topology, doc: MarkedDoc) -> list[Problem]:
    """Every ISP has its own AS, and no site shares one with an ISP (eBGP would see itself in the path)."""
    problems = []
    owner: dict[int, tuple[str, tuple]] = {}
    for i, isp in enumerate(topo.isps):
        path = ("isps", i, "asn")
        if isp.asn in owner:
            other, opath = owner[isp.asn]
            problems.append(doc.problem(path, f"ASN {isp.asn} is also ISP {other}'s (line {doc.line_of(opath)}); "
                                              "every ISP needs its own"))
        else:
            owner[isp.asn] = (isp.name, path)
    for s, site in enumerate(topo.sites):
        asn = topo.site_asn(site)
        if asn in owner:
            other, opath = owner[asn]
            if site.asn is None:
                problems.append(doc.problem(("sites", s), f"the default ASN of site {site.name} ({asn}) is ISP "
                                                          f"{other}'s (line {doc.line_of(opath)}); set asn:"))
            else:
                problems.append(doc.problem(("sites", s, "asn"), f"ASN {asn} is ISP {other}'s (line "
                                                                 f"{doc.line_of(opath)}); a site needs its own"))
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
