"""``kind: multihoming`` (files without a ``kind:`` key): ISPs with a transit core and multihomed sites, each
running a multihoming mechanism.  Ready once BGP converged; `mhlab check` pings and curls every server from
every source address of every site host and counts what the ISPs' ingress filters dropped meanwhile."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from ..checks import (Check, bgp_checks, bgp_converging, http_get, ingress_counters, kernel_routes,
                      kernel_routes_pending, ping, route_spec)
from ..mechanisms import get_mechanism, mechanisms
from ..netplan import NetPlan, build_netplan
from ..runninglab import merged
from ..topology import Topology, host_def, parse_topology, site_addons, site_mechanism
from ..yamlmarks import MarkedDoc
from .contract import Condition, LabKind, RunningLab, Section

BGP_TIMEOUT = 90.0
IGP_TIMEOUT = 60.0
# once BGP converged every path exists: a probe may still be lost to a first neighbour discovery or a busy
# machine, so each is retried (one packet a poll) - for this long, then deploy fails naming the probe
DATA_PLANE_TIMEOUT = 15.0
PINGS_AT_ONCE = 16  # data-plane probes at once: each mostly waits for its reply


def parse(doc: MarkedDoc) -> Topology:
    data = dict(doc.data) if isinstance(doc.data, dict) else doc.data
    if isinstance(data, dict):
        data.pop("kind", None)
    return parse_topology(MarkedDoc(data, doc.file, doc.lines), set(mechanisms()))


def readiness(net: NetPlan) -> tuple[Condition, ...]:
    out = []
    if any(n.bgp for n in net.nodes.values()):
        out.append(Condition("BGP convergence", bgp_converging(net), BGP_TIMEOUT, interval=0.1,
                             targets=lambda n: [f"{r.name}->{nb.peer}" for r in n.routers() if r.bgp
                                                for nb in r.bgp.neighbors]))
    if net.await_kernel_routes:
        out.append(Condition("site IGP convergence", kernel_routes_pending, IGP_TIMEOUT, interval=0.1))
    if data_plane_probes(net):
        out.append(_data_plane(net))
    return tuple(out) + mechanism_conditions(net)


def mechanism_conditions(net: NetPlan) -> tuple[Condition, ...]:
    """What the sites' mechanisms and add-ons ask of the running lab (``NetPlan.conditions``), after the
    kind's own: conditions of one name from several sites become one, polled together."""
    by_name: dict[str, list[Condition]] = {}
    for cond in net.conditions:
        by_name.setdefault(cond.name, []).append(cond)
    return tuple(merged(conds) for conds in by_name.values())


def usable_sources(net: NetPlan, host: str) -> dict[str, str]:
    """Source name (ISP, ``pi``) -> the host's first address from it, for the sources its site's mechanism
    makes usable (``Mechanism.usable_sources``; all of them by default)."""
    spec = net.nodes[host]
    site = next(s for s in net.topology.sites if s.name == spec.owner)
    addrs = net.plan.addresses(host)
    chooser = get_mechanism(site.mechanism).usable_sources
    names = chooser(net, site, host) if chooser else list(addrs)
    return {n: addrs[n][0] for n in names if n in addrs}


def data_plane_probes(net: NetPlan) -> list[tuple[str, str, str, str, str]]:
    """(host, source name, source address, server, server address): every site host, from each usable
    address, to every server behind an ISP."""
    sites = {s.name for s in net.topology.sites}
    srvs = [host_def(h).name for isp in net.topology.isps for h in isp.hosts]
    return [(h.name, isp, src, srv, net.plan.address(srv)) for h in net.hosts() if h.owner in sites
            for isp, src in usable_sources(net, h.name).items() for srv in srvs]


def _data_plane(net: NetPlan) -> Condition:
    """One ping per probe still missing, per poll, a few hosts at once (``PINGS_AT_ONCE``: a 250-site lab has
    500 probes, one after the other a poll took minutes); a probe that got its reply is not sent again.  A
    host's own probes go one after the other, in the order of its sources: what a host agent learns from
    them (the exit path cache keeps the first source that got an answer) is the same in every bring-up."""
    probes = data_plane_probes(net)
    done: set[int] = set()
    by_host: dict[str, list[int]] = {}
    for i, (host, *_rest) in enumerate(probes):
        by_host.setdefault(host, []).append(i)

    def pending(lab: RunningLab) -> list[str]:
        def probe_host(indices: list[int]) -> None:
            for i in indices:
                host, _, src, _, dst = probes[i]
                if i not in done and ping(lab, host, src, dst, wait=0.5):
                    done.add(i)

        with ThreadPoolExecutor(max_workers=PINGS_AT_ONCE, thread_name_prefix="probe") as pool:
            list(pool.map(probe_host, by_host.values()))
        return [_probe_name(p) for i, p in enumerate(probes) if i not in done]

    return Condition("data plane", pending, DATA_PLANE_TIMEOUT, interval=0.2,
                     targets=lambda n: [_probe_name(p) for p in probes])


def _probe_name(probe: tuple[str, str, str, str, str]) -> str:
    host, isp, _, srv, _ = probe
    return f"{host} -> {srv} from its {isp} address"


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
    out = [Section("ingress filters (packets dropped or rejected)",
                    tuple((k, str(v)) for k, v in counters.items())),
            Section("routes installed per site router (source-specific, tunnels, site IGP)",
                    tuple((r, summary) for r, summary in installed_routes(lab).items()))]
    topo = lab.net.topology
    for site in topo.sites:
        for mech, options in [site_mechanism(topo, site)] + site_addons(topo, site):
            if mech.inspect is not None:
                out += mech.inspect(lab, site, options)
    return out


def installed_routes(lab: RunningLab) -> dict[str, str]:
    """Per site router, what its kernel holds of what the mechanisms configure: source-specific routes
    (``DST from SRC via/encap``), seg6 encap/decap routes, and how many routes the site IGP installed."""
    sites = {s.name for s in lab.net.topology.sites}
    out = {}
    for node in lab.net.routers():
        if node.owner not in sites:
            continue
        routes = kernel_routes(lab, node.name)
        special = [r for r in routes if r.get("from", "::/0") != "::/0" or "encap" in r]
        parts = [route_spec(r) + (f" encap {r['encap']}" if "encap" in r else
                                  f" via {r.get('gateway', r.get('dev', '?'))}") for r in special]
        igp = sum(r.get("protocol") == "ospf" for r in routes)
        out[node.name] = f"{len(special)} source-specific/tunnel: " + "; ".join(parts) + \
            (f" | {igp} from the site IGP" if igp else "")
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
