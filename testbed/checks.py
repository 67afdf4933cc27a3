"""End-to-end checks of a running lab: BGP sessions, and reachability from every source address.

They answer the default lab's question - does each of a multihomed host's addresses reach the outside? -
and report which ISP's ingress filter dropped what.  Used by `mhlab check`, the demo and the lab tests.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from .lab import Lab
from .topology import host_def


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""
    src: str = ""
    dst: str = ""
    isp: str = ""


def bgp_checks(lab: Lab) -> list[Check]:
    return [Check(f"BGP {router} -> {peer}", state == "Established", state)
            for router, peers in lab.bgp_sessions().items() for peer, state in peers.items()]


def bfd_peers(lab: Lab, router: str) -> dict[str, str]:
    """BFD peer address -> status ('up', 'down', 'init') on a router running bfdd."""
    return {p["peer"]: p["status"] for p in lab.vtysh_json(router, "show bfd peers json") or []}


def routing_settled(lab: Lab, router: str, prefix: str, paths: int) -> bool:
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


def ping(lab: Lab, node: str, src: str, dst: str, count: int = 1, wait: float = 1.0) -> bool:
    return lab[node].run(["ping", "-6", "-n", "-q", "-c", str(count), "-W", str(wait), "-I", src, dst],
                         timeout=count * wait + 5).returncode == 0


def http_get(lab: Lab, node: str, src: str, dst: str, timeout: float = 2.0) -> tuple[bool, str]:
    """A real curl from a chosen source address; returns (ok, detail)."""
    res = lab[node].run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{time_connect}",
                         "--interface", src, "--connect-timeout", str(timeout), "-m", str(timeout * 2),
                         f"http://[{dst}]/"], timeout=timeout * 2 + 5)
    if res.returncode != 0:
        return False, (res.stderr.strip().splitlines() or [f"curl exit {res.returncode}"])[-1]
    code, connect = res.stdout.split()
    return code == "200", f"HTTP {code}, connect {float(connect) * 1000:.1f} ms"


def servers(lab: Lab) -> list[tuple[str, bool]]:
    """Single-homed hosts behind ISPs (like ``srv``) and whether they serve HTTP."""
    return [(host_def(h).name, "http" in host_def(h).services) for isp in lab.topology.isps for h in isp.hosts]


def reachability_checks(lab: Lab) -> list[Check]:
    """Every site host, from each of its addresses (one per ISP), to every server: ping, and curl."""
    out = []
    for host in lab.net.hosts():
        if host.owner not in {s.name for s in lab.topology.sites}:
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


def ingress_counters(lab: Lab) -> dict[str, int]:
    """'isp/counter' -> packets the ISP's ingress filter dropped."""
    return {f"{n.name}/{c}": lab.nft_counter(n.name, c) for n in lab.net.routers() for c in n.counters}


def run_all(lab: Lab) -> list[Check]:
    checks = bgp_checks(lab) + reachability_checks(lab)
    for name, dropped in ingress_counters(lab).items():
        checks.append(Check(f"ingress filter {name}", True, f"{dropped} packets dropped"))
    return checks


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
