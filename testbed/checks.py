"""End-to-end checks of a running lab and the probes they are made of: BGP sessions, ping and curl from a
chosen source address, ingress-filter counters.

What `mhlab check` runs on a lab is its kind's choice (``LabKind.checks``: the multihoming kind pings and
curls from every source address and reports which ISP's ingress filter dropped what; the i2p kind asks the
routers and the balancer); :func:`run_all` runs it.  The probes read only the NetPlan.  Used by
`mhlab check`, the demo and the lab tests.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import asdict
from typing import Any, Callable

from .frr import bgp_peers
from .kinds.contract import Check, RunningLab
from .procs import is_alive

__all__ = ["Check", "bgp_checks", "bgp_pending", "bgp_converging", "bfd_peers", "kernel_routes",
           "kernel_routes_pending", "route_spec", "routing_settled", "ping", "http_get",
           "ingress_counters", "process_checks", "run_all", "table", "to_json"]


def bgp_checks(lab: RunningLab) -> list[Check]:
    return [Check(f"BGP {router} -> {peer}", state == "Established", state)
            for router, peers in lab.bgp_sessions().items() for peer, state in peers.items()]


def bgp_pending(lab: RunningLab) -> list[str]:
    """What keeps BGP from having converged: sessions not Established, then routes a router still lacks
    (``NetPlan.await_routes``: e.g. every ISP knowing every ISP aggregate).  Empty once converged."""
    missing = [f"{r}->{p}: {s}" for r, peers in lab.bgp_sessions().items() for p, s in peers.items()
               if s != "Established"]
    return missing or routes_missing(lab)


def routes_missing(lab: RunningLab) -> list[str]:
    """Routes a router still lacks once every session is up (``NetPlan.await_routes``)."""
    missing = []
    for router, prefixes in lab.net.await_routes.items():
        routes = lab.vtysh_json(router, "show bgp ipv6 unicast json").get("routes", {})
        missing += [f"{router} lacks {p}" for p in prefixes if p not in routes]
    return missing


def bgp_converging(net) -> Callable[[RunningLab], list[str]]:
    """:func:`bgp_pending` for one bring-up, asking as few routers as it can.  A session is Established at
    both its ends or (for one keepalive round trip) at neither, so each poll asks about every session from
    one end only - the routers with the most sessions first - and a session once seen Established is not
    asked about again.  In an N-site lab the two ISPs' answers cover every session: two vtysh runs a
    poll instead of 2N+3 (at 50 sites the 103 a poll cost more CPU than BGP itself: 29 s to converge,
    2.4 s asking two)."""
    sessions = {r.name: [(nb.peer, nb.address) for nb in r.bgp.neighbors] for r in net.routers() if r.bgp}
    order = sorted(sessions, key=lambda r: len(sessions[r]), reverse=True)
    up: set[frozenset[str]] = set()
    last: dict[frozenset[str], str] = {}  # pair -> "router->peer: state" as last asked

    def pending(lab: RunningLab) -> list[str]:
        asked: set[frozenset[str]] = set()
        for router in order:
            if all(frozenset((router, p)) in up | asked for p, _ in sessions[router]):
                continue
            peers = bgp_peers(lab.vtysh_json(router, "show bgp summary json"))
            states: dict[str, str] = {}
            for peer, address in sessions[router]:
                state = peers.get(address, {}).get("state", "Idle")
                states[peer] = state if states.get(peer, "Established") == "Established" else states[peer]
            for peer, state in states.items():
                pair = frozenset((router, peer))
                asked.add(pair)
                last[pair] = f"{router}->{peer}: {state}"
                if state == "Established":
                    up.add(pair)
        return [last[pair] for pair in asked - up] or routes_missing(lab)

    return pending


def kernel_routes(lab: RunningLab, router: str, table: str = "main") -> list[dict]:
    """The router's IPv6 kernel routes (``ip -j -6 route show table T``), each with ``dst`` and ``from``
    normalised to prefixes (``::/0``, ``…/128``)."""
    out = lab[router].run(["ip", "-j", "-6", "route", "show", "table", table]).stdout
    routes = json.loads(out or "[]")
    for r in routes:
        for key in ("dst", "from"):
            if key in r:
                r[key] = _prefix(r[key])
    return routes


def _prefix(text: str) -> str:
    return "::/0" if text == "default" else str(ipaddress.IPv6Network(text, strict=False))


def route_spec(route: dict) -> str:
    """``DST`` or ``DST from SRC``: how ``NetPlan.await_kernel_routes`` names a route."""
    return route["dst"] + (f" from {route['from']}" if route.get("from", "::/0") != "::/0" else "")


def kernel_routes_pending(lab: RunningLab) -> list[str]:
    """Kernel routes a router still lacks (``NetPlan.await_kernel_routes``): the site IGP's prefixes, and
    routes a mechanism derives from the IGP.  Empty once every one is installed."""
    missing = []
    for router, wanted in lab.net.await_kernel_routes.items():
        have = {route_spec(r) for r in kernel_routes(lab, router) if r.get("type", "unicast") == "unicast"}
        missing += [f"{router} lacks {w}" for w in wanted if w not in have]
    return missing


def bfd_peers(lab: RunningLab, router: str) -> dict[str, str]:
    """BFD peer address -> status ('up', 'down', 'init') on a router running bfdd."""
    return {p["peer"]: p["status"] for p in lab.vtysh_json(router, "show bfd peers json") or []}


def routing_settled(lab: RunningLab, router: str, prefix: str, paths: int) -> bool:
    """Every BGP session Established, every BFD session up where bfdd runs (it comes up after BGP: a fault
    injected before would be seen only by the hold timer), and ``router`` holding ``paths`` paths to
    ``prefix`` - the state to wait for before injecting the next fault."""
    sessions = lab.bgp_sessions()
    if not all(state == "Established" for peers in sessions.values() for state in peers.values()):
        return False
    with_bfd = [n.name for n in lab.net.routers() if "bfdd" in n.frr_daemons]
    if not all(set(bfd_peers(lab, r).values()) <= {"up"} for r in with_bfd):
        return False
    return len(lab.vtysh_json(router, "show bgp ipv6 unicast json").get("routes", {}).get(prefix, [])) == paths


def ping(lab: RunningLab, node: str, src: str, dst: str, count: int = 1, wait: float = 1.0) -> bool:
    return lab[node].run(["ping", "-6", "-n", "-q", "-c", str(count), "-W", str(wait), "-I", src, dst],
                         timeout=count * wait + 5).returncode == 0


def http_get(lab: RunningLab, node: str, src: str, dst: str, timeout: float = 2.0) -> tuple[bool, str]:
    """A real curl from a chosen source address; returns (ok, detail)."""
    res = lab[node].run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{time_connect}",
                         "--interface", src, "--connect-timeout", str(timeout), "-m", str(timeout * 2),
                         f"http://[{dst}]/"], timeout=timeout * 2 + 5)
    if res.returncode != 0:
        return False, (res.stderr.strip().splitlines() or [f"curl exit {res.returncode}"])[-1]
    code, connect = res.stdout.split()
    return code == "200", f"HTTP {code}, connect {float(connect) * 1000:.1f} ms"


def ingress_counters(lab: RunningLab) -> dict[str, int]:
    """'isp/counter' -> packets the ISP's ingress filter dropped."""
    return {f"{n.name}/{c}": lab.nft_counter(n.name, c) for n in lab.net.routers() for c in n.counters}


def process_checks(lab: Any) -> list[Check]:
    """One check per daemon and service the NetPlan starts (FRR daemons, servers, agents): its latest
    recorded process still runs.  A crashed bgpd fails as ``process ra/bgpd`` - named, not inferred from
    the BGP sessions it took down."""
    latest = {(p.node, p.name): p for p in lab.rundir.procs()}
    out = []
    for spec in lab.net.nodes.values():
        for name in [*spec.frr_daemons, *(s.name for s in spec.services)]:
            rec = latest.get((spec.name, name))
            alive = rec is not None and is_alive(rec)
            out.append(Check(f"process {spec.name}/{name}", alive,
                             f"running (pid {rec.pid})" if alive else
                             f"dead (pid {rec.pid})" if rec else "never started"))
    return out


def run_all(lab: Any) -> list[Check]:
    """What `mhlab check` reports: every daemon and service running, then the checks of the lab's kind."""
    return process_checks(lab) + lab.kind.checks(lab)


def table(checks: list[Check]) -> str:
    """A fixed-width table a person reads."""
    width = max((len(c.name) for c in checks), default=10)
    lines = [f"{'check':<{width}}  result  detail", f"{'-' * width}  ------  {'-' * 30}"]
    lines += [f"{c.name:<{width}}  {'ok' if c.ok else 'FAIL':<6}  {c.detail}" for c in checks]
    passed = sum(c.ok for c in checks)
    lines.append(f"{passed} passed, {len(checks) - passed} failed")
    return "\n".join(lines)


def to_json(checks: list[Check]) -> str:
    return json.dumps([asdict(c) for c in checks], indent=2)
