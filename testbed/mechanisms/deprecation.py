"""``deprecation`` add-on (thesis 6.3.1.2.1): the site deprecates the prefix of an ISP it cannot use.

Detection, on each exit router (``agents/deprecation``): the ISP-learnt default route in the kernel (there
only while the BGP session is up; with the lab's ``bgp: {bfd: true}`` a silent failure drops it in ~0.3 s)
and echo probes from the exit's own address in the ISP's prefix to a target behind the ISP's upstream
(``probe_target``; default: the first server behind the transit), which see an upstream cut that keeps the
session up.  Hysteresis (``down_after`` lost in a row, ``up_after`` answered in a row, ``hold_down_ms``)
keeps random loss from flapping a prefix.

Deprecation: real radvd on the router that is each LAN's gateway advertises every site /64 of that LAN
with ``AdvAutonomous on``; the agent there rewrites radvd's config (preferred lifetime 0 for a dead ISP's
prefixes) and SIGHUPs radvd by the PID radvd recorded.  Exit routers announce their verdicts over UDP to
those routers, so LANs that do not touch an exit learn it too (relayed by the interior gateway's radvd, not
DHCPv6), and an exit router that falls silent for ``peer_timeout_ms`` (crashed: it cannot announce its own
failure) counts as down.

Hosts keep the plan's static addresses: they accept RAs (``accept_ra=1``, ``autoconf=1``, default routes
from RAs ignored, ``AdvDefaultLifetime 0`` anyway) and their interface identifier is their ``ip token``, so
the kernel matches each advertised prefix to the address the host already has and takes its lifetimes:
preferred 0 marks it ``deprecated`` (RFC 6724 rule 3: not chosen for new connections), positive makes it
preferred again.  Measured in a namespace: the flag flips ~20 ms after radvd's SIGHUP.
"""

from __future__ import annotations

import ipaddress
import json

from pydantic import Field

from agents.deprecation.radvd import Advert, Lifetimes, render

from ..runninglab import Condition
from ..kinds.contract import Section
from ..netplan import NodeFile, Process
from ..topology import host_def
from ._agents import agent_rows
from .contract import FieldProblem, Mechanism, Options, Readiness

SOCKET = "{node_dir}/deprecation.sock"
SERVICE = "deprecation"
RADVD = "radvd"
HOST_IID_MASK = (1 << 64) - 1
# an exit's agent deprecates an ISP until it has seen it up (its route comes with BGP) for its hold-down and
# ten answered probes (~3 s); the next advertisement makes the hosts' addresses preferred again
PREFERRED_TIMEOUT = 30.0


class DeprecationOptions(Options):
    """Options of the ``deprecation`` add-on."""

    probe: bool = Field(True, description="probe beyond each ISP (catches an upstream cut that keeps BGP up)")
    probe_target: str | None = Field(None, description="address or host name the exits probe (default: the "
                                                       "first host of an ISP the site does not buy from)")
    probe_interval_ms: int = Field(100, ge=10, le=60000, description="time between route checks and probes")
    probe_timeout_ms: int = Field(200, ge=10, le=60000, description="a probe unanswered this long is lost")
    down_after: int = Field(5, ge=1, le=1000, description="probes lost in a row that make an ISP unusable")
    up_after: int = Field(10, ge=1, le=1000, description="probes answered in a row before it is usable again")
    hold_down_ms: int = Field(2000, ge=0, le=3600000, description="an unusable ISP stays deprecated at least this long")
    peer_timeout_ms: int = Field(500, ge=50, le=600000, description="an exit router silent this long (crashed) "
                                                                    "counts as down")
    announce_interval_ms: int = Field(100, ge=10, le=60000, description="how often exits announce their verdicts")
    preferred_lifetime_s: int = Field(1800, ge=1, description="preferred lifetime advertised for a usable prefix")
    valid_lifetime_s: int = Field(3600, ge=1, description="valid lifetime advertised for every prefix")


def _validate(topology, site, opts: DeprecationOptions) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    if opts.probe_target is not None and not _is_address(opts.probe_target):
        hosts = [host_def(h).name for isp in topology.isps for h in isp.hosts]
        if opts.probe_target not in hosts:
            problems.append((("options", "probe_target"), f"{opts.probe_target!r} is neither an IPv6 address nor "
                             f"a host behind an ISP ({', '.join(hosts) or 'none'})"))
    if opts.probe_timeout_ms > opts.probe_interval_ms * opts.down_after:
        problems.append((("options", "probe_timeout_ms"), "longer than down_after probe intervals: a failure "
                         "would be seen only after the timeout"))
    if opts.preferred_lifetime_s > opts.valid_lifetime_s:
        problems.append((("options", "preferred_lifetime_s"), "longer than valid_lifetime_s (RFC 4862 ignores it)"))
    return problems


def _is_address(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).version == 6
    except ValueError:
        return False


def _target(net, site, opts: DeprecationOptions) -> str | None:
    if opts.probe_target is not None:
        return opts.probe_target if _is_address(opts.probe_target) else net.plan.address(opts.probe_target)
    mine = {ex.isp for ex in site.exits}
    for isp in net.topology.isps:
        if isp.name not in mine and isp.hosts:
            return net.plan.address(host_def(isp.hosts[0]).name)
    return None


def _own_address(net, router: str, prefix) -> str | None:
    """An address of ``router`` in ``prefix`` (the probe's source: source routing sends it out that way)."""
    for seg in net.plan.segments_of(router):
        found = seg.member(router).address_in(prefix)
        if found is not None:
            return str(found)
    return None


def _address_for(net, sender: str, receiver: str) -> str:
    """The address ``sender`` sends to ``receiver`` at: on a segment they share, else its first one."""
    for seg in net.plan.segments_of(receiver):
        if any(m.node == sender for m in seg.members):
            return str(seg.member(receiver).addresses[0].ip)
    return net.plan.address(receiver)


def _apply(net, site, opts: DeprecationOptions) -> None:
    plan, topo = net.plan, net.topology
    prefixes = plan.site_prefixes[site.name]
    exits = {ex.isp: ex.router for ex in site.exits}
    adverts: dict[str, list[Advert]] = {}  # RA router -> what it advertises
    for lan in site.lans:
        seg = plan.segment(f"{site.name}-{lan.name}")
        sender = lan.gateway or topo.lan_routers(site, lan)[0]
        for isp, subnet in _advertised(net, site, seg):
            adverts.setdefault(sender, []).append(Advert(seg.member(sender).ifname, str(subnet), isp))
        _hosts_learn(net, site, seg, lan)
    target = _target(net, site, opts)
    routers = list(dict.fromkeys([ex.router for ex in site.exits] + list(adverts)))
    life = Lifetimes(opts.preferred_lifetime_s, opts.valid_lifetime_s)
    for router in routers:
        local = [isp for isp, r in exits.items() if r == router]
        argv = ["python3", "-m", "agents.deprecation.daemon", "--socket", SOCKET, "--name", router,
                "--interval", f"{opts.probe_interval_ms / 1000:g}", "--probe-timeout", f"{opts.probe_timeout_ms / 1000:g}",
                "--announce-interval", f"{opts.announce_interval_ms / 1000:g}", "--down-after", str(opts.down_after),
                "--up-after", str(opts.up_after), "--hold-down", f"{opts.hold_down_ms / 1000:g}",
                "--peer-timeout", f"{opts.peer_timeout_ms / 1000:g}",
                "--preferred-lifetime", str(life.preferred), "--valid-lifetime", str(life.valid)]
        for isp in local:
            seg = plan.segment(f"{isp}-{router}")
            argv += ["--watch", f"{isp}={seg.member(router).ifname}"]
            source = _own_address(net, router, prefixes[isp])
            if opts.probe and target and source:
                argv += ["--probe", f"{isp}={source},{target}"]
            for receiver, ads in adverts.items():
                if receiver != router and any(a.isp == isp for a in ads):
                    argv += ["--announce", _address_for(net, router, receiver)]
        for isp in dict.fromkeys(a.isp for a in adverts.get(router, [])):
            if isp not in local:
                argv += ["--remote", isp]
        node = net.nodes[router]
        if router in adverts:
            argv += [a for ad in adverts[router] for a in ("--advert", f"{ad.iface},{ad.prefix},{ad.isp}")]
            argv += ["--radvd-conf", "{node_dir}/radvd.conf", "--radvd-pid", "{node_dir}/radvd.pid"]
            node.templates.append(NodeFile("radvd/radvd.conf.j2", "radvd.conf",
                                           {"radvd_conf": render(adverts[router], {}, life)}))
            node.services.append(Process(RADVD, radvd_argv("{node_dir}"), check=radvd_check_argv("{node_dir}")))
        node.services.append(Process(SERVICE, argv))
    what = f"probing {target}" if opts.probe and target else "no probes (routes only)"
    net.notes.append(f"site {site.name}: prefix deprecation - agents on {', '.join(routers)} ({what}); radvd on "
                     f"{', '.join(adverts)} advertising {sum(len(a) for a in adverts.values())} prefixes")


def radvd_argv(node_dir: str) -> list[str]:
    return ["radvd", "--nodaemon", "--config", f"{node_dir}/radvd.conf", "--pidfile", f"{node_dir}/radvd.pid",
            "--logmethod", "logfile", "--logfile", f"{node_dir}/radvd.log"]


def radvd_check_argv(node_dir: str) -> list[str]:
    return ["radvd", "--configtest", "--config", f"{node_dir}/radvd.conf", "--logmethod", "stderr"]


def _advertised(net, site, seg) -> list[tuple[str, ipaddress.IPv6Network]]:
    """(ISP, /64) of a LAN segment that its radvd advertises: every site /64 but a PI one (never deprecated)."""
    prefixes = net.plan.site_prefixes[site.name]
    return [(isp, subnet) for subnet in seg.subnets
            if (isp := net.plan.isp_of(subnet.network_address)) in prefixes]


def _token(member) -> int | None:
    """The one interface identifier a host has in all its LAN's prefixes, or None (then it cannot match
    advertised prefixes to its addresses)."""
    iids = {int(a.ip) & HOST_IID_MASK for a in member.addresses}
    return iids.pop() if len(iids) == 1 else None


def _hosts_learn(net, site, seg, lan) -> None:
    """Hosts accept RAs for prefix state only, with their interface identifier as SLAAC token."""
    for ref in lan.hosts:
        host = host_def(ref).name
        member = seg.member(host)
        token = _token(member)
        if token is None:
            net.notes.append(f"site {site.name}: {host} has a different interface identifier per prefix "
                             "(HBA?): it cannot match advertised prefixes to its addresses, and keeps them preferred")
            continue
        node = net.nodes[host]
        node.sysctls.update({"net.ipv6.conf.default.accept_ra": "1", "net.ipv6.conf.default.autoconf": "1",
                             "net.ipv6.conf.default.accept_ra_defrtr": "0",
                             "net.ipv6.conf.default.accept_ra_pinfo": "1"})
        node.ip_commands.append(f"token set {ipaddress.IPv6Address(token)} dev {member.ifname}")


def _conditions(net, site, opts: DeprecationOptions) -> list[Condition]:
    """Deploy returns once no advertised address of a host that takes lifetimes from RAs is deprecated: an
    agent's first verdict, before it saw an ISP up, deprecates it, and with every ISP up a lab whose new
    connections still avoid one is not up yet (the data plane's probes pass with a deprecated source).  One
    ``ip addr`` per such host a poll."""
    watched: list[tuple[str, str, str]] = []  # host, ISP, address
    for lan in site.lans:
        seg = net.plan.segment(f"{site.name}-{lan.name}")
        for ref in lan.hosts:
            member = seg.member(host_def(ref).name)
            if _token(member) is not None:
                watched += [(member.node, isp, str(addr)) for isp, subnet in _advertised(net, site, seg)
                            if (addr := member.address_in(subnet)) is not None]
    if not watched:
        return []

    def pending(lab) -> list[str]:
        out = []
        for host in dict.fromkeys(h for h, _, _ in watched):
            shown = json.loads(lab.node(host).run(["ip", "-j", "-6", "addr", "show"]).stdout or "[]")
            deprecated = {a.get("local") for link in shown for a in link.get("addr_info", []) if a.get("deprecated")}
            out += [f"{h}'s {isp} address {a} is deprecated" for h, isp, a in watched if h == host and a in deprecated]
        return out

    return [Condition("sources preferred", pending, PREFERRED_TIMEOUT, interval=0.2,
                      targets=lambda n: [f"{h}'s {isp} address {a} preferred" for h, isp, a in watched])]


def _agent_summary(status: dict) -> str:
    states = {**status.get("local", {}), **status.get("remote", {})}
    parts = [f"{isp} {'preferred' if s['preferred'] else 'DEPRECATED'} ({s['reason']})" for isp, s in states.items()]
    return "; ".join(parts) + f"; radvd reloads {status.get('radvd_reloads', 0)}"


def _inspect(lab, site, opts: DeprecationOptions) -> list[Section]:
    routers = [r for r in lab.net.topology.site_routers(site)
               if any(s.name == SERVICE for s in lab.net.nodes[r].services)]
    rows = agent_rows(lab, routers, SERVICE, "deprecation.sock", _agent_summary)
    radvd = []
    for r in routers:
        if any(s.name == RADVD for s in lab.net.nodes[r].services):
            procs = [(p, alive) for p, alive in lab.node(r).processes() if p.name == RADVD]
            state = "not started" if not procs else (f"running (pid {procs[-1][0].pid})" if procs[-1][1]
                                                     else f"DEAD (pid {procs[-1][0].pid}): hosts keep the last lifetimes")
            radvd.append((r, state))
    return [Section(f"prefix deprecation agents, site {site.name}", rows),
            Section(f"radvd, site {site.name}", tuple(radvd))]


MECHANISM = Mechanism(
    "deprecation", "exit routers detect a dead ISP (BGP/BFD routes, probes beyond it); radvd deprecates its "
    "prefix on every LAN (preferred lifetime 0)", "6.3.1.2.1", _apply, options=DeprecationOptions,
    validate=_validate, role="addon", inspect=_inspect, conditions=_conditions,
    readiness=(Readiness(SERVICE, SOCKET, "deprecation agent control socket"),
               Readiness(RADVD, "{node_dir}/radvd.pid", "radvd's pid file")))
