"""Bring-up cost: mhlab deploy of a lab next to the raw cost of the same namespaces, veths and daemons.

Prints, for the default lab and generated labs of N sites (N = 1, 5, 20; 50, 250, 500 on request):
- mhlab: time from `Lab.deploy` to "all BGP sessions Established, every ISP knows every aggregate" plus one
  end-to-end ping from each host address;
- memory of the running lab: the sum of the RSS of its recorded processes (shared pages counted once per
  process: an upper bound) and the drop of the host's MemAvailable (what the lab really costs, kernel
  namespaces and veths included; noisy when other work runs), both per node;
- raw: a straight-line script doing the same work with no orchestration (same namespaces, veths, addresses,
  FRR daemons and configs, polling until BGP is up, one ping) - the floor;
- the ratio, and the time mhlab spent waiting for BGP (protocol time, in both columns);
- per router, the private memory (``/proc/PID/smaps_rollup``: Private_Clean + Private_Dirty, what each daemon
  really adds; RSS counts the shared FRR libraries again in every process) of zebra and of bgpd;
- the load average before each row (other work on the machine slows everything down).
Labs of more than ~30 sites need more of the host's one IPv6 neighbour table than its default 1,024 entries
(``testbed.neightable``): ``--raise-neigh-table`` lets each deploy raise it (journalled, restored at destroy).
Run as root: `sudo .venv/bin/python benchmarks/bringup.py [--sizes 1,5,20] [--repeat 1] [--raw-max 50]
[--raise-neigh-table]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mininet.link import Link  # noqa: E402
from mininet.node import Node  # noqa: E402

from testbed.checks import ping  # noqa: E402
from testbed.frr import daemon_argv, daemon_env, parse_json  # noqa: E402
from testbed.generate import n_sites  # noqa: E402
from testbed.lab import Lab  # noqa: E402
from testbed.netplan import build_netplan  # noqa: E402
from testbed.render import node_dir, render  # noqa: E402
from testbed.topology import load_topology  # noqa: E402

DEFAULT = Path(__file__).resolve().parent.parent / "topologies" / "two-isp-site.yaml"


def mem_available_kb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1])
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


FRR = ("zebra", "bgpd", "staticd", "bfdd", "ospf6d")


def private_kb(pid: int) -> int:
    """Pages only this process holds (``smaps_rollup``): its heap, stacks and written data."""
    total = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                total += int(line.split()[1])
    except OSError:
        pass
    return total


def mhlab_once(topo, name: str, raise_neigh_table: bool) -> tuple[float, float, int, int, int, dict[str, int]]:
    """Seconds to a converged, pinged lab; BGP convergence seconds; RSS sum and MemAvailable drop (kB); RSS
    of the FRR daemons (kB); private kB per FRR daemon name (summed over routers)."""
    avail0 = mem_available_kb()
    t0 = time.monotonic()
    lab = Lab.deploy(topo, name=name, raise_neigh_table=raise_neigh_table)
    try:
        for host in lab.net.hosts():
            if host.owner in {s.name for s in lab.topology.sites}:
                for addrs in lab.plan.addresses(host.name).values():
                    srv = next(h.name for h in lab.net.hosts() if h.owner not in {s.name for s in lab.topology.sites})
                    assert ping(lab, host.name, addrs[0], lab.plan.address(srv)), "end-to-end ping failed"
                break  # one host per lab is enough to prove end-to-end reachability
        elapsed = time.monotonic() - t0
        procs = lab.rundir.procs()
        rss = sum(rss_kb(rec.pid) for rec in procs)
        frr = sum(rss_kb(rec.pid) for rec in procs if rec.name in FRR)
        private: dict[str, int] = {}
        for rec in procs:
            if rec.name in FRR:
                private[rec.name] = private.get(rec.name, 0) + private_kb(rec.pid)
        return elapsed, lab.timings["wait for BGP convergence"], rss, avail0 - mem_available_kb(), frr, private
    finally:
        lab.destroy()


def raw_once(topo) -> float:
    """The same lab by a straight-line script: Mininet nodes and veths, `ip -batch`, nft, the same FRR
    daemons on the same configs, then poll vtysh until every session is Established and ping once.
    No journal, no config dry-run, no anchors, no records: the floor an orchestrator cannot beat."""
    net = build_netplan(topo)
    with tempfile.TemporaryDirectory(dir="/run") as tmp:
        root = Path(tmp)
        os.chmod(root, 0o755)
        render(net, root)
        t0 = time.monotonic()
        nodes = {n: Node(n.replace(":", "-")) for n in net.nodes}
        procs = []
        try:
            for spec in net.nodes.values():
                if spec.role != "bridge":
                    nodes[spec.name].cmd(f"sysctl -q -p {node_dir(root, spec.name)}/sysctl.conf")
            for link in net.links:
                Link(nodes[link.a], nodes[link.b], intfName1=link.a_if, intfName2=link.b_if)
            for spec in net.nodes.values():
                d = node_dir(root, spec.name)
                if spec.role == "bridge":
                    ports = [l.b_if for l in net.links if l.b == spec.name]
                    nodes[spec.name].cmd("ip link add br0 type bridge && ip link set br0 up && " +
                                         " && ".join(f"ip link set {p} master br0 up" for p in ports))
                    continue
                nodes[spec.name].cmd(f"ip -6 -batch {d}/setup.ip")
                if spec.nft:
                    nodes[spec.name].cmd(f"nft -f {d}/ruleset.nft")
            for spec in net.routers():
                d = node_dir(root, spec.name)
                subprocess.run(["chown", "-R", "frr:frr", str(d)], check=True)
                for daemon in spec.frr_daemons:
                    argv = daemon_argv(daemon, d, d, len(spec.bgp.neighbors) if spec.bgp else 0)
                    procs.append(nodes[spec.name].popen(argv, env={**os.environ, **daemon_env()}))
                    if daemon == "zebra":
                        while not (d / "zserv.api").exists():
                            time.sleep(0.005)
            pending = {s.name for s in net.routers()}
            while pending:
                for name in list(pending):
                    out = nodes[name].cmd(f"vtysh --vty_socket {node_dir(root, name)} -c 'show bgp summary json'")
                    peers = parse_json(out).get("ipv6Unicast", {}).get("peers", {})
                    if peers and all(p.get("state") == "Established" and p.get("pfxRcd", 0) > 0
                                     for p in peers.values()):
                        pending.discard(name)
                time.sleep(0.05)
            host = next(h for h in net.hosts() if h.owner in {s.name for s in topo.sites})
            srv = next(h for h in net.hosts() if h.owner not in {s.name for s in topo.sites})
            dst = net.plan.address(srv.name)
            while "1 received" not in nodes[host.name].cmd(f"ping -c1 -W1 {dst}"):
                pass
            return time.monotonic() - t0
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait()
            for n in nodes.values():
                n.terminate()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1,5,20", help="generated labs with this many sites (comma list)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per lab (median reported)")
    ap.add_argument("--raw-max", type=int, default=50,
                    help="run the straight-line baseline only for labs of up to this many sites (it is slow)")
    ap.add_argument("--no-default", action="store_true", help="skip the default two-isp-site lab")
    ap.add_argument("--prefix", default="bench", help="lab names: PREFIX + run number")
    ap.add_argument("--raise-neigh-table", action="store_true",
                    help="let each deploy raise the host's neighbour-table limits when the lab needs it "
                    "(restored when the lab is destroyed); without it a lab that needs more fails at once")
    args = ap.parse_args()
    labs = [] if args.no_default else [("two-isp-site (default)", load_topology(DEFAULT), 0)]
    labs += [(f"{n} sites x 2 ISPs", n_sites(n, mechanism="sadr-static"), n) for n in map(int, args.sizes.split(","))]
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'lab':<24} {'nodes':>5} {'load':>5} {'mhlab s':>8} {'raw s':>7} {'ratio':>6} {'BGP conv s':>10} "
          f"{'ms/node':>7} {'RSS MB/node':>11} {'MemAvail MB/node':>16} {'FRR RSS MB/router':>17} "
          f"{'zebra priv MB':>13} {'bgpd priv MB':>12} {'FRR priv GB':>11}")
    for label, topo, sites in labs:
        net = build_netplan(topo)
        nodes, routers = len(net.nodes), sum(1 for n in net.routers() if n.frr_daemons)
        m, conv, rss, avail, frr, r, priv = [], [], [], [], [], [], []
        load = os.getloadavg()[0]
        for i in range(args.repeat):
            total, c, rss_kb_sum, avail_kb, frr_kb, private = mhlab_once(topo, f"{args.prefix}{i}",
                                                                         args.raise_neigh_table)
            frr.append(frr_kb)
            priv.append(private)
            m.append(total)
            conv.append(c)
            rss.append(rss_kb_sum)
            avail.append(avail_kb)
            if sites <= args.raw_max:
                r.append(raw_once(topo))
        mm = statistics.median(m)
        raw = f"{statistics.median(r):>7.2f} {mm / statistics.median(r):>6.2f}" if r else f"{'-':>7} {'-':>6}"
        per = {d: statistics.median(p.get(d, 0) for p in priv) / 1024 / max(routers, 1) for d in ("zebra", "bgpd")}
        all_priv = statistics.median(sum(p.values()) for p in priv) / 1024 / 1024
        print(f"{label:<24} {nodes:>5} {load:>5.1f} {mm:>8.2f} {raw} {statistics.median(conv):>10.2f} "
              f"{1000 * mm / nodes:>7.1f} {statistics.median(rss) / 1024 / nodes:>11.2f} "
              f"{statistics.median(avail) / 1024 / nodes:>16.2f} "
              f"{statistics.median(frr) / 1024 / max(routers, 1):>17.2f} {per['zebra']:>13.2f} "
              f"{per['bgpd']:>12.2f} {all_priv:>11.2f}", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    print("\nmhlab = Lab.deploy until BGP converged + end-to-end ping; raw = the same bring-up as a straight-line "
          "script with no journal, checks or records.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
