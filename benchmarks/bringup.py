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
- the peak: the largest drop of MemAvailable while the deploy ran (sampled every 0.1 s), which a figure taken at
  convergence misses;
- the CPU: utime + stime of the lab's FRR daemons at convergence, and the busy CPU-s of all cores during the
  deploy (``/proc/stat``; other jobs included): on 2 cores a bring-up is CPU-bound when the two are close to
  2 x its seconds;
- the load average before each row (other work on the machine slows everything down).
Labs of more than ~30 sites need more of the host's one IPv6 neighbour table than its default 1,024 entries
(``testbed.neightable``): ``--raise-neigh-table`` lets each deploy raise it (journalled, restored at destroy).
``--ksm`` deploys with the FRR daemons open to kernel same-page merging (``testbed.ksm``) and measures the
memory twice: at convergence and once ksmd stopped finding pages to merge (how long that took, ksmd's CPU,
and BGP and a ping checked again afterwards); each run prints the deploy's phases.  ``--min-available``
stops the run (the deploy removes what it built) before the host's MemAvailable falls below 6 GB.
``--ksm --ksm-budget GB`` paces the FRR start so the lab never holds more than GB (``testbed.ksm.Pacer``).
Run as root: `sudo .venv/bin/python benchmarks/bringup.py [--sizes 1,5,20] [--repeat 1] [--raw-max 50]
[--raise-neigh-table] [--ksm [--ksm-keep-aslr] [--ksm-budget GB]]`.
"""

from __future__ import annotations

import _thread
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mininet.link import Link  # noqa: E402
from mininet.node import Node  # noqa: E402

from testbed.checks import ping  # noqa: E402
from testbed.frr import bgp_peers, daemon_argv, daemon_env, parse_json  # noqa: E402
from testbed.generate import n_sites  # noqa: E402
from testbed.ksm import HostKsm, KsmOptions, mem_available_kb  # noqa: E402
from testbed.lab import Lab  # noqa: E402
from testbed.netplan import build_netplan  # noqa: E402
from testbed.procs import cpu_seconds  # noqa: E402
from testbed.render import node_dir, render  # noqa: E402
from testbed.topology import load_topology  # noqa: E402

DEFAULT = Path(__file__).resolve().parent.parent / "topologies" / "two-isp-site.yaml"


class LowWater:
    """The lowest MemAvailable seen while it runs (sampled every 0.1 s in a thread): the lab's peak, which a
    figure taken at convergence misses when ksmd merges meanwhile or BGP's buffers come and go."""

    def __init__(self) -> None:
        self.low, self.stop = mem_available_kb(), threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(0.1):
            self.low = min(self.low, mem_available_kb())

    def done(self) -> int:
        self.stop.set()
        self.thread.join()
        return min(self.low, mem_available_kb())


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


def pss_shared_kb(pid: int) -> tuple[int, int]:
    """Proportional set size and shared pages (``smaps_rollup``); KSM-merged pages count as shared."""
    out = {"Pss:": 0, "Shared_Clean:": 0, "Shared_Dirty:": 0}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key = line.split()[0]
            if key in out:
                out[key] += int(line.split()[1])
    except OSError:
        pass
    return out["Pss:"], out["Shared_Clean:"] + out["Shared_Dirty:"]


def host_busy_s() -> float:
    """CPU seconds all cores spent busy since boot (``/proc/stat``: everything but idle and iowait)."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def ksmd_cpu_s() -> float:
    """CPU seconds ksmd has used since boot (utime + stime of the kernel thread)."""
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if (proc / "comm").read_text().strip() == "ksmd":
                    return cpu_seconds(int(proc.name))
            except OSError:
                continue
    return 0.0


def await_merge(ksm: HostKsm, settle: float, timeout: float) -> list[tuple[float, int, int]]:
    """Poll ksmd until pages_sharing stops growing for ``settle`` s (or ``timeout``): (s, full_scans,
    pages_sharing) samples, the time line of the merge."""
    t0, line = time.monotonic(), []
    best, since = -1, time.monotonic()
    while time.monotonic() - t0 < timeout:
        st = ksm.stats()
        line.append((round(time.monotonic() - t0, 1), st.get("full_scans", 0), st.get("pages_sharing", 0)))
        if st.get("pages_sharing", 0) > best * 1.01:
            best, since = st.get("pages_sharing", 0), time.monotonic()
        elif time.monotonic() - since > settle:
            break
        time.sleep(1)
    return line


def mhlab_once(topo, name: str, raise_neigh_table: bool, ksm: KsmOptions | None, merge_timeout: float) -> dict:
    """One deploy: seconds to a converged, pinged lab; BGP convergence seconds; the deploy's phases; RSS
    sum and MemAvailable drop (kB); RSS of the FRR daemons (kB); private kB per FRR daemon name (summed over
    routers).  With ``ksm``: the same memory figures again once ksmd has merged, how long that took and
    ksmd's CPU meanwhile."""
    avail0 = mem_available_kb()
    cpu0 = ksmd_cpu_s()
    low = LowWater()
    busy0 = host_busy_s()
    t0 = time.monotonic()
    try:
        lab = Lab.deploy(topo, name=name, raise_neigh_table=raise_neigh_table, ksm=ksm)
    except BaseException:
        low.done()
        raise
    try:
        for host in lab.net.hosts():
            if host.owner in {s.name for s in lab.topology.sites}:
                for addrs in lab.plan.addresses(host.name).values():
                    srv = next(h.name for h in lab.net.hosts() if h.owner not in {s.name for s in lab.topology.sites})
                    assert ping(lab, host.name, addrs[0], lab.plan.address(srv)), "end-to-end ping failed"
                break  # one host per lab is enough to prove end-to-end reachability
        out = {"elapsed": time.monotonic() - t0, "conv": lab.timings["wait for BGP convergence"],
               "timings": dict(lab.timings), **memory(lab, avail0), "peak": avail0 - low.done(),
               "host_cpu": host_busy_s() - busy0,
               "frr_cpu": sum(cpu_seconds(r.pid) for r in lab.rundir.procs() if r.name in FRR)}
        if ksm is not None:
            t1 = time.monotonic()
            out["merge_line"] = await_merge(HostKsm(), 10, merge_timeout)
            out["merge_s"] = time.monotonic() - t1
            out["ksmd_cpu"] = ksmd_cpu_s() - cpu0
            out["merged"] = memory(lab, avail0)
            for isp in ("ispa", "ispb", "core"):  # every session of the ISPs still up once ksmd merged
                down = [a for a, p in bgp_peers(lab.vtysh_json(isp, "show bgp summary json")).items()
                        if p.get("state") != "Established"]
                assert not down, f"{isp}: BGP sessions down after merging: {down[:5]}"
            assert ping(lab, host.name, addrs[0], lab.plan.address(srv)), "end-to-end ping after merging failed"
        return out
    finally:
        lab.destroy()


def memory(lab, avail0: int) -> dict:
    procs = lab.rundir.procs()
    private: dict[str, int] = {}
    shared: dict[str, int] = {}
    for rec in procs:
        if rec.name in FRR:
            private[rec.name] = private.get(rec.name, 0) + private_kb(rec.pid)
            shared[rec.name] = shared.get(rec.name, 0) + pss_shared_kb(rec.pid)[1]
    pss = sum(pss_shared_kb(rec.pid)[0] for rec in procs if rec.name in FRR)
    return {"pss": pss, "profit": HostKsm().stats().get("general_profit", 0) // 1024 if HostKsm().available() else 0,
            "rss": sum(rss_kb(rec.pid) for rec in procs), "avail": avail0 - mem_available_kb(),
            "frr": sum(rss_kb(rec.pid) for rec in procs if rec.name in FRR), "private": private, "shared": shared}


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


def mem_columns(mems: list[dict], nodes: int, routers: int) -> str:
    """The memory columns of a row: medians over runs; per node, per router, in all."""
    per = {d: statistics.median(m["private"].get(d, 0) for m in mems) / 1024 / max(routers, 1)
           for d in ("zebra", "bgpd")}
    all_priv = statistics.median(sum(m["private"].values()) for m in mems) / 1024 / 1024
    avail = statistics.median(m["avail"] for m in mems)
    return (f"{statistics.median(m['rss'] for m in mems) / 1024 / nodes:>11.2f} {avail / 1024 / nodes:>16.2f} "
            f"{statistics.median(m['frr'] for m in mems) / 1024 / max(routers, 1):>17.2f} {per['zebra']:>13.2f} "
            f"{per['bgpd']:>12.2f} {all_priv:>11.2f} {avail / 1024 / 1024:>16.2f} "
            f"{statistics.median(m['pss'] for m in mems) / 1024 / 1024:>10.2f} "
            f"{statistics.median(m['profit'] for m in mems) / 1024 / 1024:>13.2f}")


def guard_memory(min_gb: float) -> None:
    """Interrupt the benchmark (a deploy under way cleans up after itself) before the host runs short: other
    jobs share the machine."""
    while mem_available_kb() > min_gb * 1024 * 1024:
        time.sleep(0.5)
    print(f"MemAvailable below {min_gb} GB: stopping", flush=True)
    _thread.interrupt_main()


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
    ap.add_argument("--ksm", action="store_true",
                    help="deploy with --ksm (FRR open to kernel same-page merging, ksmd on while the lab runs): "
                    "memory is measured at convergence and again once ksmd has merged")
    ap.add_argument("--ksm-keep-aslr", action="store_true", help="with --ksm: address randomisation stays on")
    ap.add_argument("--ksm-budget", type=float, metavar="GB", help="with --ksm: pace the FRR start so the lab "
                    "never holds more than GB (testbed.ksm.Pacer)")
    ap.add_argument("--merge-timeout", type=float, default=300, help="with --ksm: wait at most this long "
                    "for ksmd to stop finding pages to merge (s)")
    ap.add_argument("--min-available", type=float, default=6.0, metavar="GB",
                    help="stop a deploy (it removes what it built) when the host's MemAvailable falls below this")
    args = ap.parse_args()
    threading.Thread(target=guard_memory, args=(args.min_available,), daemon=True).start()
    ksm = KsmOptions(keep_aslr=args.ksm_keep_aslr, budget_gb=args.ksm_budget) if args.ksm else None
    labs = [] if args.no_default else [("two-isp-site (default)", load_topology(DEFAULT), 0)]
    labs += [(f"{n} sites x 2 ISPs", n_sites(n, mechanism="sadr-static"), n) for n in map(int, args.sizes.split(","))]
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; MemAvailable "
          f"{mem_available_kb() / 1024 / 1024:.1f} GB; KSM: {'off' if ksm is None else ksm}")
    print(f"{'lab':<24} {'nodes':>5} {'load':>5} {'mhlab s':>8} {'raw s':>7} {'ratio':>6} {'BGP conv s':>10} "
          f"{'ms/node':>7} {'RSS MB/node':>11} {'MemAvail MB/node':>16} {'FRR RSS MB/router':>17} "
          f"{'zebra priv MB':>13} {'bgpd priv MB':>12} {'FRR priv GB':>11} {'MemAvail drop GB':>16} {'FRR PSS GB':>10} "
          f"{'KSM profit GB':>13} {'peak GB':>7} {'FRR CPU s':>9} {'host CPU s':>10}")
    for label, topo, sites in labs:
        net = build_netplan(topo)
        nodes, routers = len(net.nodes), sum(1 for n in net.routers() if n.frr_daemons)
        runs, r = [], []
        load = os.getloadavg()[0]
        for i in range(args.repeat):
            runs.append(mhlab_once(topo, f"{args.prefix}{i}", args.raise_neigh_table, ksm, args.merge_timeout))
            print(f"  run {i}: load {os.getloadavg()[0]:.1f}; peak {runs[-1]['peak'] / 2**20:.2f} GB, "
                  f"FRR {runs[-1]['frr_cpu']:.1f} CPU-s, host {runs[-1]['host_cpu']:.1f} CPU-s; phases (s): "
                  + ", ".join(f"{k} {v:.1f}" for k, v in runs[-1]["timings"].items()), flush=True)
            if ksm is not None:
                line = runs[-1]["merge_line"]
                print(f"  run {i}: ksmd merged for {runs[-1]['merge_s']:.0f} s, {runs[-1]['ksmd_cpu']:.1f} CPU-s "
                      "since deploy; (s, full_scans, pages_sharing): "
                      + " ".join(f"({t:.0f},{f},{p})" for t, f, p in line[::max(1, len(line) // 12)] + line[-1:]))
            if sites <= args.raw_max:
                r.append(raw_once(topo))
        mm = statistics.median(x["elapsed"] for x in runs)
        raw = f"{statistics.median(r):>7.2f} {mm / statistics.median(r):>6.2f}" if r else f"{'-':>7} {'-':>6}"
        conv = statistics.median(x["conv"] for x in runs)
        print(f"{label:<24} {nodes:>5} {load:>5.1f} {mm:>8.2f} {raw} {conv:>10.2f} {1000 * mm / nodes:>7.1f} "
              + mem_columns([x for x in runs], nodes, routers)
              + f" {statistics.median(x['peak'] for x in runs) / 2**20:>7.2f}"
              f" {statistics.median(x['frr_cpu'] for x in runs):>9.1f}"
              f" {statistics.median(x['host_cpu'] for x in runs):>10.1f}",
              flush=True)
        if ksm is not None:
            print(f"{'  ... after ksmd merged':<24} {nodes:>5} {'':>5} {'':>8} {'':>7} {'':>6} {'':>10} {'':>7} "
                  + mem_columns([x["merged"] for x in runs], nodes, routers), flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    print("\nmhlab = Lab.deploy until BGP converged + end-to-end ping; raw = the same bring-up as a straight-line "
          "script with no journal, checks or records. peak = the largest drop of MemAvailable during the deploy "
          "(sampled every 0.1 s); FRR CPU = utime + stime of the lab's FRR daemons at convergence; host CPU = busy "
          "CPU-s of all cores during the deploy (other jobs included).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
