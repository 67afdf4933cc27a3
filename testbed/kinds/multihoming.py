"""``kind: multihoming`` (files without a ``kind:`` key): ISPs with a transit core and multihomed sites, each
running a multihoming mechanism.  Ready once BGP converged; `mhlab check` pings and curls every server from
every source address of every site host and counts what the ISPs' ingress filters dropped meanwhile."""

from __future__ import annotations

from ..checks import Check, bgp_checks, bgp_pending, http_get, ingress_counters, ping
from ..mechanisms import mechanisms
from ..netplan import NetPlan, build_netplan
from ..topology import Topology, host_def, parse_topology, site_addons, site_mechanism
from ..yamlmarks import MarkedDoc
from .contract import LabKind, Readiness, RunningLab, Section

BGP_TIMEOUT = 90.0


def parse(doc: MarkedDoc) -> Topology:
    data = dict(doc.data) if isinstance(doc.data, dict) else doc.data
    if isinstance(data, dict):
        data.pop("kind", None)
    return parse_topology(MarkedDoc(data, doc.file, doc.lines), set(mechanisms()))


def readiness(net: NetPlan) -> tuple[Readiness, ...]:
    if not any(n.bgp for n in net.nodes.values()):
        return ()
    return (Readiness("BGP convergence", bgp_pending, BGP_TIMEOUT, interval=0.1),)


def servers(lab: RunningLab) -> list[tuple[str, bool]]:
    """Single-homed hosts behind ISPs (like ``srv``) and whether they serve HTTP."""
    return [(host_def(h).name, "http" in host_def(h).services) for isp in lab.net.topology.isps for h in isp.hosts]


def reachability_checks(lab: RunningLab) -> list[Check]:
    """Every site host, from each of its addresses (one per ISP), to every server: ping, and curl."""
    sites = {s.name for s in lab.net.topology.sites}
    out = []
    for host in lab.net.hosts():
        if host.owner not in sites:
            continue
        for isp, addrs in lab.plan.addresses(host.name).items():
            for srv, has_http in servers(lab):
                dst = lab.plan.address(srv)
                ok = ping(lab, host.name, addrs[0], dst)
                out.append(Check(f"ping {host.name} -> {srv} from its {isp} address", ok,
                                 "reply" if ok else "no reply", addrs[0], dst, isp))
                if has_http:
                    ok, detail = http_get(lab, host.name, addrs[0], dst)
                    out.append(Check(f"curl {host.name} -> {srv} from its {isp} address", ok, detail,
                                     addrs[0], dst, isp))
    return out


def checks(lab: RunningLab) -> list[Check]:
    """BGP sessions, reachability from every source address, and - read before and after that traffic -
    every ingress filter's drop counter: the checks' own packets are all legitimate (each leaves with a
    source its ISP delegated), so any drop during them means a packet took the wrong exit."""
    before = ingress_counters(lab)
    out = bgp_checks(lab) + reachability_checks(lab)
    after = ingress_counters(lab)
    for name, total in after.items():
        dropped = total - before.get(name, 0)
        out.append(Check(f"ingress filter {name}", dropped == 0,
                         f"{dropped} of the checks' packets dropped ({total} in total since deploy)"))
    return out


def inspect(lab: RunningLab) -> list[Section]:
    """Ingress-filter counters, then what each site's mechanism and add-ons report (their agents)."""
    counters = ingress_counters(lab)
    out = [Section("ingress filters (packets dropped)", tuple((k, str(v)) for k, v in counters.items()))]
    topo = lab.net.topology
    for site in topo.sites:
        for mech, options in [site_mechanism(topo, site)] + site_addons(topo, site):
            if mech.inspect is not None:
                out += mech.inspect(lab, site, options)
    return out



KIND = LabKind(
    name="multihoming",
    summary="ISPs, a transit core and multihomed IPv6 sites, each with a multihoming mechanism",
    model=Topology,
    parse=parse,
    netplan=build_netplan,
    readiness=readiness,
    checks=checks,
    inspect=inspect,
    implicit=True,
)
