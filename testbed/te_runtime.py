"""Traffic engineering in a running lab: count new connections per ISP, open many of them, change the
policy (DHCPv6 or BGP) and time how long the change takes to act.

Used by ``experiments/te_compare.py`` and the lab tests; everything goes through the lab's recorded nodes.
New connections are counted where the thesis says the split is decided - at the ISPs: an nftables counter
of TCP SYNs per customer interface of each ISP router, outbound (``iif``, the site's SYNs) or inbound
(``oif``, SYNs towards the site).  The ``policy`` add-on installs the outbound ones; ``add_syn_counters``
adds either kind to any lab.
"""

from __future__ import annotations

import ipaddress
import json
import random
import sys
import time
from dataclasses import dataclass

from .errors import LabError
from .frr import parse_json
from .mechanisms.policy import PolicyOptions, policy_table, syn_counter, syn_counter_table, syn_table
from .wait import wait_until

CONNECT = """
import socket, sys
ok = 0
for a in sys.argv[2:]:
    s = socket.socket(socket.AF_INET6)
    s.settimeout(2)
    if sys.argv[1] != "-":
        s.bind((sys.argv[1], 0))
    try:
        s.connect((a, {port})); ok += 1
    except OSError:
        pass
    s.close()
print(ok)
"""


@dataclass(frozen=True)
class Exit:
    """Where one ISP meets one site: the ISP router and its interface towards the site."""

    isp: str
    ifname: str


def site_exits(lab, site_name: str) -> list[Exit]:
    site = next(s for s in lab.topology.sites if s.name == site_name)
    return [Exit(ex.isp, lab.plan.segment(f"{ex.isp}-{ex.router}").member(ex.isp).ifname) for ex in site.exits]


def add_syn_counters(lab, exits: list[Exit], direction: str) -> None:
    """Count SYNs on each exit: ``out`` = from the site (the add-on's counters), ``in`` = towards it."""
    for ex in exits:
        table = syn_counter_table(ex.ifname, direction)
        lab.node(ex.isp).run(["nft", "-f", "-"], input=table, check=True)


def syn_counts(lab, exits: list[Exit], direction: str = "out") -> dict[str, int]:
    out = {}
    for ex in exits:
        raw = lab.node(ex.isp).run(["nft", "-j", "list", "counter", "ip6", syn_table(ex.ifname, direction),
                                    syn_counter(ex.ifname, direction)], check=True).stdout
        out[ex.isp] = next(int(i["counter"]["packets"]) for i in parse_json(raw)["nftables"] if "counter" in i)
    return out


def connect_many(lab, host: str, addresses: list[str], port: int, source: str | None = None) -> int:
    """Open (and close) one TCP connection to each address from ``host``; returns how many connected."""
    res = lab.node(host).run([sys.executable, "-c", CONNECT.replace("{port}", str(port)), source or "-", *addresses],
                             timeout=10 + 3 * len(addresses), check=True)
    return int(res.stdout.strip() or 0)


def measure_split(lab, exits: list[Exit], direction: str, connect) -> dict[str, float]:
    """Share (percent) of the SYNs ``connect()`` causes, per ISP."""
    before = syn_counts(lab, exits, direction)
    connect()
    after = syn_counts(lab, exits, direction)
    delta = {isp: after[isp] - before[isp] for isp in after}
    total = sum(delta.values())
    if total == 0:
        raise LabError(f"no SYN counted at {', '.join(delta)}: nothing left the site")
    return {isp: round(100 * n / total, 1) for isp, n in delta.items()}


def add_addresses(lab, host: str, prefix: str, count: int, seed: int = 7) -> list[str]:
    """``count`` random addresses of ``prefix`` (the host's own LAN /64) added to ``host``: destinations."""
    net = ipaddress.IPv6Network(prefix)
    rng = random.Random(seed)
    addrs = [str(net[rng.randrange(1 << 16, net.num_addresses - 1)]) for _ in range(count)]
    ifname = next(m.ifname for s in lab.plan.segments_of(host) for m in s.members if m.node == host)
    lab.node(host).run(["ip", "-6", "-batch", "-"], check=True,
                       input="".join(f"addr add {a}/128 dev {ifname} nodad\n" for a in addrs))
    return addrs


def push_policy(lab, site_name: str, options: PolicyOptions) -> tuple[float, dict]:
    """A new policy at the site's DHCPv6 server (it rereads its options on SIGHUP); returns (time, table)."""
    site = next(s for s in lab.topology.sites if s.name == site_name)
    table = policy_table({isp: str(p) for isp, p in lab.plan.site_prefixes[site_name].items()}, options)
    server = next(n.name for n in lab.net.nodes.values() if any(s.name == "dhcp6-policy" for s in n.services)
                  and n.owner == site.name)
    handle = lab.node(server)
    t0 = time.time()
    handle.run([sys.executable, "-m", "agents.policy.server", "push", "--dir", str(handle.dir),
                "--policy", json.dumps(table)], check=True)
    return t0, table


def wait_applied(lab, hosts: list[str], table: dict, timeout: float) -> dict[str, float]:
    """Host -> when it applied ``table`` (its policy.json shows those rows), waiting up to ``timeout``."""
    def pending() -> dict[str, float | None]:
        out = {}
        for host in hosts:
            try:
                state = json.loads((lab.node(host).dir / "policy.json").read_text())
            except (OSError, ValueError):
                out[host] = None
                continue
            out[host] = state["applied_at"] if state["rows"] == table["rows"] and state["ports"] == table["ports"] \
                else None
        return out
    done = wait_until(pending, timeout, 0.05, what=f"hosts {', '.join(hosts)} applying the new policy",
                      ok=lambda d: all(v is not None for v in d.values()))
    return {h: float(t) for h, t in done.items()}


def vtysh(lab, router: str, *commands: str) -> str:
    handle = lab.node(router)
    argv = ["vtysh", "--vty_socket", str(handle.dir)]
    for c in commands:
        argv += ["-c", c]
    res = handle.run(argv, check=True)
    return res.stdout


def best_nexthop(lab, router: str, prefix: str) -> str | None:
    """The next hop of ``router``'s best BGP path to ``prefix`` (None: no route)."""
    out = parse_json(lab.node(router).run(["vtysh", "--vty_socket", str(lab.node(router).dir), "-c",
                                           f"show bgp ipv6 unicast {prefix} json"]).stdout)
    for path in out.get("paths", []):
        if path.get("bestpath", {}).get("overall"):
            return ",".join(sorted(h.get("ip", "") for h in path.get("nexthops", [])))
    return None


def path_count(lab, router: str, prefix: str) -> int:
    """How many BGP paths ``router`` has to ``prefix``."""
    out = parse_json(lab.node(router).run(["vtysh", "--vty_socket", str(lab.node(router).dir), "-c",
                                           f"show bgp ipv6 unicast {prefix} json"]).stdout)
    return len(out.get("paths", []))


def site_routes(lab, router: str) -> list[str]:
    """The prefixes in ``router``'s BGP table that are not an ISP aggregate: what the sites cost it."""
    out = parse_json(lab.node(router).run(["vtysh", "--vty_socket", str(lab.node(router).dir), "-c",
                                           "show bgp ipv6 unicast json"]).stdout)
    aggregates = {str(p) for p in lab.plan.aggregates.values()}
    return sorted(p for p in out.get("routes", {}) if p not in aggregates)
