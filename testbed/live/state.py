"""What a running lab looks like right now: links up or down, BGP sessions, faults in force, every host's
addresses (preferred or deprecated) and each shim context's current locator pair.

One ``ip -j addr`` per node, one ``show bgp summary`` per router and one ``contexts`` request per shim agent
(its control socket is a file in the node folder, reachable from here), run in parallel.  The drawing, the
terminal view and the web page all read this one snapshot, so they never disagree.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from agents.jsonctl import request

from ..lab import Lab
from ..procs import is_alive
from .faultlog import in_force


@dataclass(frozen=True)
class PortState:
    node: str
    ifname: str
    up: bool  # administratively up and carrier


@dataclass(frozen=True)
class LinkState:
    segment: str
    a: PortState
    b: PortState

    @property
    def up(self) -> bool:
        return self.a.up and self.b.up


@dataclass(frozen=True)
class Address:
    node: str
    ifname: str
    address: str  # with its prefix length
    deprecated: bool


@dataclass(frozen=True)
class ShimContext:
    host: str
    local_ulid: str
    peer_ulid: str
    state: str
    local_locator: str
    peer_locator: str
    translated: bool


@dataclass
class LiveState:
    lab: str
    taken: float
    links: list[LinkState] = field(default_factory=list)
    bgp: dict[str, dict[str, str]] = field(default_factory=dict)
    addresses: list[Address] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)
    shim: list[ShimContext] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def link(self, segment: str, node: str | None = None) -> LinkState | None:
        return next((l for l in self.links if l.segment == segment and (node is None or node in (l.a.node, l.b.node))),
                    None)

    def faults_by_target(self) -> dict[str, list[str]]:
        """What each fault in force acts on (segment, ISP or node) -> the fault names."""
        out: dict[str, list[str]] = {}
        for f in self.faults:
            model = f.get("fault", {})
            for key in ("link", "isp", "node"):
                value = model.get(key)
                if value:
                    target = value[1] if isinstance(value, list) else value  # [host, lan] -> the LAN
                    out.setdefault(str(target), []).append(f["name"])
        return out

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for link, raw in zip(self.links, d["links"]):
            raw["up"] = link.up
        return d


def parse_ip_addr(node: str, text: str) -> tuple[dict[str, bool], list[Address]]:
    """``ip -j addr`` -> (interface -> up, global addresses); ``up`` needs the UP flag and a carrier."""
    ports: dict[str, bool] = {}
    addrs: list[Address] = []
    for link in json.loads(text or "[]"):
        flags = link.get("flags", [])
        ports[link["ifname"]] = "UP" in flags and "LOWER_UP" in flags and "NO-CARRIER" not in flags
        for a in link.get("addr_info", []):
            if a.get("family") == "inet6" and a.get("scope") == "global":
                addrs.append(Address(node, link["ifname"], f"{a['local']}/{a['prefixlen']}", bool(a.get("deprecated"))))
    return ports, addrs


def parse_contexts(host: str, result: list[dict[str, Any]]) -> list[ShimContext]:
    out = []
    for c in result:
        dp = c.get("datapath") or {}
        locators = dp.get("locators") or [c.get("local_ulid", ""), c.get("peer_ulid", "")]
        out.append(ShimContext(host, str(c.get("local_ulid", "")), str(c.get("peer_ulid", "")), str(c.get("state", "")),
                               str(locators[0]), str(locators[1]), bool(dp.get("translated"))))
    return out


def gather(lab: Lab, workers: int = 8) -> LiveState:
    """A fresh snapshot of ``lab`` (errors of single nodes are noted, not raised)."""
    state = LiveState(lab.name, time.time())
    running = {n: h for n, h in lab.nodes.items() if is_alive(h.anchor)}
    shim_hosts = [n for n, spec in lab.net.nodes.items() if spec.role == "host" and n in running
                  and (lab.nodes[n].dir / "shim.sock").exists()]  # a shim agent serves there

    def addr_of(name: str) -> tuple[str, Any]:
        return name, parse_ip_addr(name, running[name].run(["ip", "-j", "addr", "show"], timeout=10).stdout)

    def shim_of(host: str) -> list[ShimContext]:
        sock = lab.nodes[host].dir / "shim.sock"
        return parse_contexts(host, request(str(sock), {"cmd": "contexts"}, timeout=2.0))

    with ThreadPoolExecutor(workers) as pool:
        addr_jobs = [pool.submit(addr_of, n) for n in running]
        bgp_job = pool.submit(_sessions, lab)
        shim_jobs = {h: pool.submit(shim_of, h) for h in shim_hosts if h in running}
        ports: dict[str, dict[str, bool]] = {}
        for job in addr_jobs:
            try:
                name, (p, addrs) = job.result()
            except Exception as exc:  # noqa: BLE001 - one node failing must not blank the whole view
                state.errors.append(str(exc))
                continue
            ports[name] = p
            if lab.net.nodes[name].role == "host":
                state.addresses += addrs
        try:
            state.bgp = bgp_job.result()
        except Exception as exc:  # noqa: BLE001
            state.errors.append(f"BGP: {exc}")
        for host, job in shim_jobs.items():
            try:
                state.shim += job.result()
            except Exception as exc:  # noqa: BLE001
                state.errors.append(f"shim agent on {host}: {exc}")
    for l in lab.net.links:
        state.links.append(LinkState(l.segment, PortState(l.a, l.a_if, ports.get(l.a, {}).get(l.a_if, False)),
                                     PortState(l.b, l.b_if, ports.get(l.b, {}).get(l.b_if, False))))
    state.faults = [e.as_dict() for e in in_force(lab.rundir)]
    return state


def _sessions(lab: Lab) -> dict[str, dict[str, str]]:
    return lab.bgp_sessions() if any(n.bgp for n in lab.net.nodes.values()) else {}
