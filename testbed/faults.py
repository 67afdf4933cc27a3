"""Fault primitives on a running lab, each with its undo, and the fault-kind table that ``prepare`` reads.

``prepare(fault, lab)`` looks the fault's model class up in :data:`FAULT_KINDS`, refuses a fault whose kind
does not apply to the lab's kind, and lets the kind's handler resolve it against the lab *before*
anything runs: FaultError names what does not exist (an unknown link, an ISP without upstreams, netem
missing), so a scenario never stops half-way because of a typo.  Handlers touch nodes only inside the
Action they return, so ``prepare`` also works on a lab that is only planned (``mhlab run --dry-run``).
Loss uses nftables (``numgen random``) on the receiving interface's ingress hook, rate limits a tbf
qdisc, delay needs netem (absent on some kernels: said plainly); I2P labs' kinds live in
:mod:`testbed.i2p.faults`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .frr import daemon_argv
from .i2p.faults import FAULT_KINDS as I2P_FAULT_KINDS
from .procs import is_alive, stop_all
from .scenario.contract import MULTIHOMING, Action, FaultError, FaultKind, lab_kind
from .scenario.model import (
    BgpReset,
    DaemonKill,
    Delay,
    Flap,
    IspDown,
    LinkDown,
    LinkUp,
    Loss,
    RateLimit,
    RouterCrash,
    UpstreamCut,
)
from .wait import WaitTimeout, wait_until

Lab = Any  # a running testbed.lab.Lab, or anything with .net, .topology, .name and lab[node] (a planned lab)
__all__ = ["Action", "FaultError", "FAULT_KINDS", "fault_kind", "netem_available", "prepare", "resolve_link"]


@dataclass(frozen=True)
class End:
    node: str
    ifname: str


@dataclass(frozen=True)
class LinkEnds:
    """A link as its two ends; ``a`` is the first node named (``forward`` = from a to b)."""

    name: str
    a: End
    b: End


def _default_burst(lab: Lab) -> str:
    """tbf's bucket when the scenario names none: what a mechanism of the lab asks for, else 32 kbit."""
    return lab.net.fault_defaults.get("rate-limit", {}).get("burst", "32kbit")


def resolve_link(lab: Lab, ref: Any) -> LinkEnds:
    """A segment name (``ispa-ra``), a pair ``[ra, ispa]``, or ``[h1, lan]`` for a host's LAN port."""
    links = lab.net.links
    if isinstance(ref, str):
        found = [l for l in links if l.segment == ref]
        if len(found) == 1:
            l = found[0]
            return LinkEnds(ref, End(l.a, l.a_if), End(l.b, l.b_if))
        if len(found) > 1:
            raise FaultError(f"{ref!r} is a LAN; name one port of it as [NODE, {ref!r}] or [NODE, LAN]")
        raise FaultError(f"no link named {ref!r}; links: {', '.join(sorted({l.segment for l in links}))}")
    x, y = ref
    for l in links:
        if {l.a, l.b} == {x, y}:
            first, second = (End(l.a, l.a_if), End(l.b, l.b_if)) if l.a == x else (End(l.b, l.b_if), End(l.a, l.a_if))
            return LinkEnds(f"{x}-{y}", first, second)
        if l.a == x and (l.segment == y or l.segment.endswith(f"-{y}")) and ":" in l.b:
            return LinkEnds(f"{x}-{y}", End(l.a, l.a_if), End(l.b, l.b_if))
    raise FaultError(f"no link between {x!r} and {y!r}")


def _set_link(lab: Lab, ends: list[End], state: str) -> None:
    for e in ends:
        lab[e.node].run(["ip", "link", "set", "dev", e.ifname, state], check=True)
    if state == "up":
        for e in ends:
            _reinstate_routes(lab, e)


def _reinstate_routes(lab: Lab, end: End) -> None:
    """Put back the node's rendered kernel routes through ``end`` after the interface comes up again.

    Setting an interface down makes the kernel delete every IPv6 route through it (keep_addr_on_down keeps
    the addresses, not the routes), so without this a link that went down and up again would leave, say,
    sadr-static's ``::/0 from P via ISP dev ispa`` gone for good - a flap would break the site for ever,
    where a router reinstates the static routes of its configuration when the interface returns.  The
    routes are the node's own ``setup.ip`` lines (``route add ... dev IFNAME``), re-added with ``replace``
    so those still present are left as they are."""
    setup = lab[end.node].dir / "setup.ip"
    lines = routes_through(setup.read_text(), end.ifname) if setup.is_file() else []
    if lines:
        family = ["-family", lab.net.ip_family] if lab.net.ip_family else []  # as deploy ran setup.ip
        lab[end.node].run(["ip", *family, "-force", "-batch", "-"], input="\n".join(lines) + "\n")


def routes_through(setup_ip: str, ifname: str) -> list[str]:
    """The ``route add`` lines of a rendered ``setup.ip`` that go out through ``ifname``, as ``route replace``."""
    return [f"route replace {line.strip()[len('route add '):]}" for line in setup_ip.splitlines()
            if line.strip().startswith("route add ") and f" dev {ifname} " in f"{line.rstrip()} "]


def _links_of(lab: Lab, node: str, only_to: set[str] | None = None) -> list[LinkEnds]:
    out = []
    for l in lab.net.links:
        if node in (l.a, l.b):
            other = l.b if l.a == node else l.a
            if only_to is None or other in only_to:
                out.append(resolve_link(lab, [node, other]) if ":" not in other else
                           LinkEnds(l.segment, End(l.a, l.a_if), End(l.b, l.b_if)))
    return out


def _down_up(lab: Lab, name: str, what: str, links: list[LinkEnds]) -> Action:
    ends = [e for l in links for e in (l.a, l.b)]
    return Action(name, what, lambda: _set_link(lab, ends, "down"), lambda: _set_link(lab, ends, "up"))


def _fault_table(name: str) -> str:
    return "mhlab_fault_" + "".join(c if c.isalnum() else "_" for c in name)


def _loss(lab: Lab, name: str, link: LinkEnds, percent: float, direction: str) -> Action:
    """Drop ``percent`` % of packets arriving at the receiving end(s) - nftables, no netem needed."""
    receivers = {"forward": [link.b], "reverse": [link.a], "both": [link.a, link.b]}[direction]
    table = _fault_table(name)
    threshold = max(1, round(percent * 100))
    # numgen's range is 0..9999, so "< 10000" is rejected: 100 % is a plain drop
    verdict = "counter drop" if threshold >= 10000 else f"numgen random mod 10000 < {threshold} counter drop"

    def apply() -> None:
        for e in receivers:
            # on one line nft wants a ';' after the chain's closing brace too
            rules = (f"table netdev {table} {{ chain in {{ type filter hook ingress device \"{e.ifname}\" "
                     f"priority -500; {verdict}; }}; }}")
            lab[e.node].run(["nft", rules], check=True)

    def undo() -> None:
        for e in receivers:
            lab[e.node].run(["nft", "delete", "table", "netdev", table])
    return Action(name, f"{percent:g}% loss on {link.name} ({direction})", apply, undo)


def _tc(lab: Lab, name: str, link: LinkEnds, direction: str, qdisc: list[str], what: str) -> Action:
    senders = {"forward": [link.a], "reverse": [link.b], "both": [link.a, link.b]}[direction]

    def apply() -> None:
        for e in senders:
            res = lab[e.node].run(["tc", "qdisc", "replace", "dev", e.ifname, "root", *qdisc])
            if res.returncode != 0:
                raise FaultError(f"{what} on {e.node}:{e.ifname} failed: {res.stderr.strip()}")

    def undo() -> None:
        for e in senders:
            lab[e.node].run(["tc", "qdisc", "del", "dev", e.ifname, "root"])
    return Action(name, f"{what} on {link.name} ({direction})", apply, undo)


def netem_available(lab: Lab) -> bool:
    """Try a netem qdisc on a node's loopback (and remove it): the only reliable test."""
    node = next(iter(lab.nodes.values()))
    res = node.run(["tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"])
    if res.returncode == 0:
        node.run(["tc", "qdisc", "del", "dev", "lo", "root"])
        return True
    return False


def _daemons(lab: Lab, node: str, only: str | None = None):
    return [p for p in lab.rundir.procs() if p.node == node and p.name not in ("anchor", "shell")
            and (only is None or p.name == only) and is_alive(p)]


def _restart(lab: Lab, node: str, killed: list) -> None:
    """Start again exactly what was killed, with the argv it was recorded with (FRR's zebra first, then
    the rest: BIRD, babeld, agents ... are restarted the same way)."""
    handle = lab[node]
    for rec in sorted(killed, key=lambda r: r.name != "zebra"):
        # a killed daemon leaves its control socket behind (zebra's API, babeld's local socket), and
        # babeld refuses to start on a stale one: the process is gone, so the socket is nobody's
        (handle.dir / ("zserv.api" if rec.name == "zebra" else f"{rec.name}.sock")).unlink(missing_ok=True)
        argv = list(rec.argv) or daemon_argv(rec.name, handle.dir, handle.dir)
        handle.spawn(rec.name, argv, cwd=handle.dir)
        if rec.name == "zebra":  # the others connect to zebra's socket: wait for it (they retry anyway)
            with contextlib.suppress(WaitTimeout):
                wait_until((handle.dir / "zserv.api").exists, 10, 0.01, what=f"{node}: zebra's API socket")


def _kill(lab: Lab, node: str, only: str | None) -> list:
    procs = _daemons(lab, node, only)
    if not procs:
        raise FaultError(f"{node} runs no {only or 'daemon'} to kill")
    stop_all({p.pid: p.start for p in procs}, grace=0.0)
    return procs


def _flap(lab: Lab, name: str, link: LinkEnds, period: float, down: float) -> Action:
    stop = threading.Event()
    ends = [link.a, link.b]

    def loop() -> None:
        while not stop.is_set():
            _set_link(lab, ends, "down")
            if stop.wait(down):
                break
            _set_link(lab, ends, "up")
            stop.wait(period - down)
        _set_link(lab, ends, "up")

    thread = threading.Thread(target=loop, daemon=True, name=f"flap-{name}")

    def undo() -> None:
        stop.set()
        thread.join(timeout=5)
    return Action(name, f"{link.name} flaps: {down:g} s down every {period:g} s", thread.start, undo)


# ---------------------------------------------------------------- one handler per fault kind

def _link_down(fault: LinkDown, lab: Lab) -> Action:
    link = resolve_link(lab, fault.link)
    return _down_up(lab, fault.name, f"{link.name} down", [link])


def _link_up(fault: LinkUp, lab: Lab) -> Action:
    link = resolve_link(lab, fault.link)
    return Action(fault.name, f"{link.name} up", _down_up(lab, fault.name, "", [link]).undo)  # type: ignore[arg-type]


def _isp_down(fault: IspDown, lab: Lab) -> Action:
    isp = _isp(lab, fault.isp)
    return _down_up(lab, fault.name, f"ISP {isp.name} down (all its links)", _links_of(lab, isp.name))


def _upstream_cut(fault: UpstreamCut, lab: Lab) -> Action:
    isp = _isp(lab, fault.isp)
    if not isp.upstreams:
        raise FaultError(f"ISP {isp.name} has no upstreams to cut")
    cut = _down_up(lab, fault.name, "", _links_of(lab, isp.name, set(isp.upstreams)))
    what = (f"ISP {isp.name} loses its upstream ({', '.join(isp.upstreams)}); its customer links stay up; "
            + ("it answers what it cannot route with ICMPv6 unreachable" if fault.icmp else
               "it drops what it cannot route silently (no ICMP)"))
    if fault.icmp:
        return Action(fault.name, what, cut.apply, cut.undo)
    table = _fault_table(fault.name)
    # the router's own ICMPv6 errors leave through its output hook: dropping them there is a router
    # whose ICMP is rate-limited to nothing (a default route into a dead upstream looks the same)
    rules = (f"table ip6 {table} {{ chain out {{ type filter hook output priority 0; "
             "icmpv6 type destination-unreachable counter drop; }; }")

    def apply() -> None:
        lab[isp.name].run(["nft", rules], check=True)
        cut.apply()

    def undo() -> None:
        assert cut.undo is not None
        cut.undo()
        lab[isp.name].run(["nft", "delete", "table", "ip6", table])
    return Action(fault.name, what, apply, undo)


def _bgp_reset(fault: BgpReset, lab: Lab) -> Action:
    node = _router(lab, fault.node)
    target = "*"
    if fault.peer:
        n = next((n for n in node.bgp.neighbors if n.peer == fault.peer), None) if node.bgp else None
        if n is None:
            raise FaultError(f"{node.name} has no BGP session with {fault.peer!r}")
        target = n.address
    cmd = f"clear bgp ipv6 {target}" + ("" if fault.hard else " soft")
    return Action(fault.name, f"BGP reset on {node.name} ({target})",
                  lambda: lab[node.name].run(["vtysh", "--vty_socket", str(lab[node.name].dir), "-c", cmd],
                                             check=True))


def _kill_action(lab: Lab, name: str, node_name: str, only: str | None) -> Action:
    node = _router(lab, node_name)
    runs = node.frr_daemons + [svc.name for svc in node.services]
    if only and only not in runs:
        raise FaultError(f"{node.name} runs no {only} (it runs {', '.join(runs) or 'no daemon'})")
    killed: list[str] = []
    return Action(name, f"{node.name}: kill {only or 'every daemon (crash)'}",
                  lambda: killed.extend(_kill(lab, node.name, only)),
                  lambda: _restart(lab, node.name, killed))


def _daemon_kill(fault: DaemonKill, lab: Lab) -> Action:
    return _kill_action(lab, fault.name, fault.node, fault.daemon)


def _router_crash(fault: RouterCrash, lab: Lab) -> Action:
    return _kill_action(lab, fault.name, fault.node, None)


def _loss_fault(fault: Loss, lab: Lab) -> Action:
    return _loss(lab, fault.name, resolve_link(lab, fault.link), fault.percent, fault.direction)


def _rate_limit(fault: RateLimit, lab: Lab) -> Action:
    burst = fault.burst or _default_burst(lab)
    return _tc(lab, fault.name, resolve_link(lab, fault.link), fault.direction,
               ["tbf", "rate", fault.rate, "burst", burst, "latency", "50ms"], f"rate limit {fault.rate}")


def _flap_fault(fault: Flap, lab: Lab) -> Action:
    period = fault.period_ms / 1000
    down = (fault.down_ms / 1000) if fault.down_ms else period / 2
    return _flap(lab, fault.name, resolve_link(lab, fault.link), period, down)


def _delay(fault: Delay, lab: Lab) -> Action:
    qd = ["netem", "delay", f"{fault.delay_ms}ms"] + ([f"{fault.jitter_ms}ms"] if fault.jitter_ms else [])
    return _tc(lab, fault.name, resolve_link(lab, fault.link), fault.direction, qd, f"delay {fault.delay_ms:g} ms")


LINK_LABS = frozenset({MULTIHOMING, "i2p"})  # any lab with links
FAULT_KINDS: Mapping[type, FaultKind] = MappingProxyType({k.model: k for k in (
    FaultKind(LinkDown, _link_down, LINK_LABS),
    FaultKind(LinkUp, _link_up, LINK_LABS),
    FaultKind(IspDown, _isp_down),
    FaultKind(UpstreamCut, _upstream_cut),
    FaultKind(BgpReset, _bgp_reset),
    FaultKind(DaemonKill, _daemon_kill),
    FaultKind(RouterCrash, _router_crash),
    FaultKind(Loss, _loss_fault, LINK_LABS),
    FaultKind(RateLimit, _rate_limit, LINK_LABS),
    FaultKind(Flap, _flap_fault, LINK_LABS),
    FaultKind(Delay, _delay, LINK_LABS),
    *I2P_FAULT_KINDS,
)})


def fault_kind(fault: Any) -> FaultKind:
    """The table entry for a fault model object; FaultError naming the known kinds when there is none."""
    kind = FAULT_KINDS.get(type(fault))
    if kind is None:
        raise FaultError(f"unknown fault kind {getattr(fault, 'kind', fault)!r}; kinds: "
                         f"{', '.join(k.name for k in FAULT_KINDS.values())}")
    return kind


def prepare(fault: Any, lab: Lab, *, check_kernel: bool = True) -> Action:
    """Resolve one scenario fault (a model of testbed.scenario.model) against ``lab``; FaultError if it
    cannot apply - to this lab's kind, to the names it refers to, or to this kernel (netem; skipped with
    ``check_kernel=False``, for a lab that is only planned)."""
    kind = fault_kind(fault)
    labs = lab_kind(lab.topology)
    if labs not in kind.lab_kinds:
        raise FaultError(f"{kind.name} does not apply to {labs} labs (only to {' and '.join(sorted(kind.lab_kinds))} "
                         "labs)")
    if check_kernel and getattr(fault, "needs_netem", False) and not netem_available(lab):
        raise FaultError(f"{kind.name} needs the netem qdisc, which this kernel lacks (no sch_netem); run the "
                         "scenario in the Vagrant VM, whose kernel has it")
    return kind.prepare(fault, lab)


def _isp(lab: Lab, name: str):
    for isp in lab.topology.isps:
        if isp.name == name:
            return isp
    raise FaultError(f"no ISP named {name!r}; ISPs: {', '.join(i.name for i in lab.topology.isps)}")


def _router(lab: Lab, name: str):
    node = lab.net.nodes.get(name)
    if node is None or node.role != "router":
        raise FaultError(f"{name!r} is not a router of lab {lab.name}")
    return node
