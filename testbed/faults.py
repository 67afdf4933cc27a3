"""Fault primitives on a running lab, each with its undo: links, ISPs, upstream cuts, daemons, loss, rate.

``prepare(fault, lab)`` resolves a scenario fault against the lab *before* anything runs and raises
FaultError naming what does not exist (an unknown link, an ISP without upstreams, netem missing), so a
scenario never stops half-way because of a typo.  Loss uses nftables (``numgen random``) on the receiving
interface's ingress hook, rate limits a tbf qdisc, delay needs netem (absent on some kernels: said plainly).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import MhlabError, UnknownName
from .frr import daemon_argv
from .lab import Lab
from .procs import is_alive, stop_all


class FaultError(MhlabError):
    """A fault cannot apply to this lab (bad reference, missing kernel feature)."""


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


@dataclass
class Action:
    """A prepared fault: ``apply()`` at its time, ``undo()`` at ``until`` (or at the end of the run)."""

    name: str
    describe: str
    apply: Callable[[], None]
    undo: Callable[[], None] | None = None
    applied: bool = field(default=False)

    def do(self) -> None:
        self.apply()
        self.applied = True

    def revert(self) -> None:
        if self.applied and self.undo is not None:
            self.undo()
            self.applied = False


def _set_link(lab: Lab, ends: list[End], state: str) -> None:
    for e in ends:
        lab[e.node].run(["ip", "link", "set", "dev", e.ifname, state], check=True)


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


def _loss_table(name: str) -> str:
    return "mhlab_fault_" + "".join(c if c.isalnum() else "_" for c in name)


def _loss(lab: Lab, name: str, link: LinkEnds, percent: float, direction: str) -> Action:
    """Drop ``percent`` % of packets arriving at the receiving end(s) - nftables, no netem needed."""
    receivers = {"forward": [link.b], "reverse": [link.a], "both": [link.a, link.b]}[direction]
    table = _loss_table(name)
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
        if rec.name == "zebra":
            (handle.dir / "zserv.api").unlink(missing_ok=True)
        argv = list(rec.argv) or daemon_argv(rec.name, handle.dir, handle.dir)
        handle.spawn(rec.name, argv, cwd=handle.dir)
        if rec.name == "zebra":
            deadline = time.monotonic() + 10
            while not (handle.dir / "zserv.api").exists() and time.monotonic() < deadline:
                time.sleep(0.01)


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


def prepare(fault: Any, lab: Lab) -> Action:
    """Resolve one scenario fault (testbed.scenario.model) against ``lab``; FaultError if it cannot apply."""
    kind, name = fault.kind, fault.name
    if kind in ("link-down", "link-up"):
        link = resolve_link(lab, fault.link)
        action = _down_up(lab, name, f"{link.name} down", [link])
        if kind == "link-up":
            return Action(name, f"{link.name} up", action.undo)
        return action
    if kind in ("isp-down", "upstream-cut"):
        isp = _isp(lab, fault.isp)
        if kind == "isp-down":
            return _down_up(lab, name, f"ISP {isp.name} down (all its links)", _links_of(lab, isp.name))
        if not isp.upstreams:
            raise FaultError(f"ISP {isp.name} has no upstreams to cut")
        return _down_up(lab, name, f"ISP {isp.name} loses its upstream ({', '.join(isp.upstreams)}); "
                        "its customer links stay up", _links_of(lab, isp.name, set(isp.upstreams)))
    if kind == "bgp-reset":
        node = _router(lab, fault.node)
        target = "*"
        if fault.peer:
            n = next((n for n in node.bgp.neighbors if n.peer == fault.peer), None)
            if n is None:
                raise FaultError(f"{node.name} has no BGP session with {fault.peer!r}")
            target = n.address
        cmd = f"clear bgp ipv6 {target}" + ("" if fault.hard else " soft")
        return Action(name, f"BGP reset on {node.name} ({target})",
                      lambda: lab[node.name].run(["vtysh", "--vty_socket", str(lab[node.name].dir), "-c", cmd],
                                                 check=True))
    if kind in ("daemon-kill", "router-crash"):
        node = _router(lab, fault.node)
        only = fault.daemon if kind == "daemon-kill" else None
        runs = node.frr_daemons + [svc.name for svc in node.services]
        if only and only not in runs:
            raise FaultError(f"{node.name} runs no {only} (it runs {', '.join(runs)})")
        killed: list = []
        return Action(name, f"{node.name}: kill {only or 'every daemon (crash)'}",
                      lambda: killed.extend(_kill(lab, node.name, only)),
                      lambda: _restart(lab, node.name, killed))
    if kind == "loss":
        return _loss(lab, name, resolve_link(lab, fault.link), fault.percent, fault.direction)
    if kind == "rate-limit":
        burst = fault.burst or _default_burst(lab)
        return _tc(lab, name, resolve_link(lab, fault.link), fault.direction,
                   ["tbf", "rate", fault.rate, "burst", burst, "latency", "50ms"], f"rate limit {fault.rate}")
    if kind == "flap":
        return _flap(lab, name, resolve_link(lab, fault.link), fault.period, fault.down or fault.period / 2)
    if kind == "delay":
        if not netem_available(lab):
            raise FaultError("delay needs the netem qdisc, which this kernel lacks (no sch_netem); run the "
                             "scenario in the Vagrant VM, whose kernel has it")
        qd = ["netem", "delay", f"{fault.delay_ms}ms"] + ([f"{fault.jitter_ms}ms"] if fault.jitter_ms else [])
        return _tc(lab, name, resolve_link(lab, fault.link), fault.direction, qd, f"delay {fault.delay_ms:g} ms")
    raise FaultError(f"unknown fault kind {kind!r}")


def _isp(lab: Lab, name: str):
    try:
        return lab.topology.isp(name)
    except UnknownName as exc:
        raise FaultError(str(exc)) from None


def _router(lab: Lab, name: str):
    node = lab.net.nodes.get(name)
    if node is None or node.role != "router":
        raise FaultError(f"{name!r} is not a router of lab {lab.name}")
    return node
