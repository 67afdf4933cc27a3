"""iperf3 throughput between ULIDs through the shim data path, plain kernel interleaved with it.

Builds identical private networks of namespaces (``agents.shim.twohosts``: hosts hA, hB, ISP
routers r1, r2): one never runs an agent (the plain kernel), one runs both agents, and with
``--compare-root DIR`` a third runs the agents of another source tree (an earlier commit's
``git archive``: before and after a change, in the same machine state).  It measures A1 -> B1
(both ULIDs) in ``--repeat`` rounds of one run per network, the order rotated every round (a
load that grows or falls during a round hits each network in each position alike):

1. plain kernel, no agent;
2. agents running (eBPF data path loaded, context established), untranslated;
3. translated: ISP 1 blackholed, REAP switched the context to (A2, B2), every packet is
   rewritten at hA's eth2 egress and carries the 8-octet payload extension header.

The table gives the median, min and max of each case, the median as a share of plain's median,
the median and quartiles of the per-round ratios (each run over the plain run of its round: the
steadier figure on a loaded machine), iperf3's CPU figures (sender's and receiver's host share) and
the daemons' own CPU time during the runs (CPU-seconds a minute, hA/hB); then our programs' own time
from the kernel's BPF run-time statistics, and the load average at start and end.  ``--pause-agents`` stops the two
daemons (SIGSTOP) during the agent runs: the kernel data path goes on alone, and on a
saturated machine their own polling no longer competes with iperf3 for a core; ``--also-paused``
measures each agent network twice a round instead, running and stopped, so that what the running
daemons cost is read per round.  "CPU µs/MB" is the sender's and the receiver's CPU time (iperf3's
figures, softirq work included) per megabyte carried: it moves much less than the rate with the
share of the machine the other processes leave (132-202 µs/MB against 0.4-23 Gb/s at load 10-56).

Run as root:  python benchmarks/shim_datapath.py [--seconds 5] [--repeat 5] [--mtu 1500] [--compare-root DIR]
Targets: untranslated and translated >= 95 % of plain.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.shim.bpfload import enable_run_time_stats  # noqa: E402
from agents.shim.twohosts import TwoHosts, wait_for  # noqa: E402
from testbed.procs import cpu_seconds  # noqa: E402

PLAIN = "plain kernel (no agent)"


@dataclass
class Run:
    gbps: float
    cpu_sender: float
    cpu_receiver: float
    retransmits: int
    seconds: float = 0.0
    programs: dict[str, tuple[int, int]] = field(default_factory=dict)  # "hA shim_out" -> (ns, runs)
    daemon_cpu: dict[str, float] = field(default_factory=dict)  # host -> CPU-seconds a minute


@dataclass
class Case:
    name: str
    runs: list[Run] = field(default_factory=list)

    def median(self) -> float:
        return statistics.median(r.gbps for r in self.runs)


def program_ids(net: TwoHosts, host: str) -> dict[int, str]:
    """tc's id -> name of our programs on a host's devices (``tc filter show`` prints both)."""
    ids = {}
    for dev in ("eth1", "eth2"):
        for direction in ("ingress", "egress"):
            for word in net.run(host, "tc", "filter", "show", "dev", dev, direction).split("\n"):
                parts = word.split()
                if "id" in parts and "name" in parts:
                    ids[int(parts[parts.index("id") + 1])] = parts[parts.index("name") + 1]
    return ids


def program_times(net: TwoHosts) -> dict[str, tuple[int, int]]:
    """(run_time_ns, run_cnt) of each of the daemons' programs, from their fds' fdinfo."""
    out = {}
    for host, proc in net.daemons.items():
        names = program_ids(net, host)
        for info in Path(f"/proc/{proc.pid}/fdinfo").iterdir():
            try:
                fields = dict(line.split(":\t", 1) for line in info.read_text().splitlines() if ":\t" in line)
            except OSError:
                continue
            if "prog_id" in fields and int(fields["prog_id"]) in names:
                out[f"{host} {names[int(fields['prog_id'])]}"] = (int(fields["run_time_ns"]), int(fields["run_cnt"]))
    return out


def iperf(net: TwoHosts, seconds: float, src: str, dst: str) -> Run:
    before = program_times(net)
    cpu_before = {host: cpu_seconds(proc.pid) for host, proc in net.daemons.items()}
    started = time.monotonic()
    server = net.popen("hB", "iperf3", "-s", "-1", "-B", dst, "-p", "5301", stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    time.sleep(0.4)
    try:
        out = net.run("hA", "iperf3", "-c", dst, "-B", src, "-p", "5301", "-t", str(seconds), "-J")
    finally:
        server.wait(10)
    end = json.loads(out)["end"]
    cpu = end["cpu_utilization_percent"]
    minutes = (time.monotonic() - started) / 60
    daemon_cpu = {host: (cpu_seconds(proc.pid) - cpu_before[host]) / minutes for host, proc in net.daemons.items()}
    after = program_times(net)
    programs = {k: (v[0] - before.get(k, (0, 0))[0], v[1] - before.get(k, (0, 0))[1]) for k, v in after.items()}
    return Run(end["sum_received"]["bits_per_second"] / 1e9, cpu["host_total"], cpu["remote_total"],
               end["sum_sent"].get("retransmits", 0), end["sum_received"]["seconds"], programs, daemon_cpu)


def establish(net: TwoHosts, peer: str, root: Path | None = None) -> None:
    net.start_daemons("ebpf", "tuned", root=root) if root else net.start_daemons("ebpf", "tuned")
    net.ask("hA", cmd="connect", peer=peer)
    if not wait_for(lambda: [c for c in net.ask("hA", cmd="contexts") if c["state"] == "established"], 10):
        raise RuntimeError("no context: " + net.log("hA")[-2000:])


def switch(net: TwoHosts, src: str, dst: str) -> None:
    """Blackhole ISP 1 under a ping until REAP moved the context to (A2, B2)."""
    net.blackhole("r1")
    pinger = net.popen("hA", "ping", "-q", "-i", "0.1", "-c", "150", "-I", src, dst, stdout=subprocess.DEVNULL)
    try:
        if not wait_for(lambda: net.ask("hA", cmd="contexts")[0]["datapath"]["translated"], 15):
            raise RuntimeError("no switch: " + net.log("hA")[-2000:])
    finally:
        pinger.kill()
        pinger.wait(5)


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def quartiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return values[0], values[0]
    q = statistics.quantiles(values, n=4)
    return q[0], q[2]


def cpu_per_mb(run: Run, percent: float) -> float:
    """CPU microseconds per megabyte carried, from iperf3's CPU share (of one core) and the rate."""
    return percent / 100 * 1e6 / (run.gbps * 1e3 / 8) if run.gbps else 0.0


def report(cases: list[Case], plains: list[Case], args: argparse.Namespace, load: tuple[str, str],
           stats: dict) -> None:
    everything = Case(PLAIN, [r for c in {id(c): c for c in plains}.values() for r in c.runs])
    title = f"iperf3 A1 -> B1 (ULIDs), {args.seconds:g} s x {args.repeat}, MTU {args.mtu}"
    print(f"\n{title:<52} {'median':>7} {'min':>6} {'max':>6} {'% plain':>8} {'rounds (q1-q3)':>15} "
          f"{'cpu snd/rcv':>12} {'CPU µs/MB snd/rcv':>18} {'agents CPU-s/min':>17}")
    for case, plain in [(everything, everything), *zip(cases, plains)]:
        ratios = [100 * r.gbps / p.gbps for r, p in zip(case.runs, plain.runs)]
        q1, q3 = quartiles(ratios)
        cpu = (f"{statistics.median(r.cpu_sender for r in case.runs):.0f}/"
               f"{statistics.median(r.cpu_receiver for r in case.runs):.0f} %")
        hosts = sorted({h for r in case.runs for h in r.daemon_cpu})
        agents = "/".join(f"{statistics.median(r.daemon_cpu[h] for r in case.runs):.2f}" for h in hosts) or "-"
        per_mb = (f"{statistics.median(cpu_per_mb(r, r.cpu_sender) for r in case.runs):.0f}/"
                  f"{statistics.median(cpu_per_mb(r, r.cpu_receiver) for r in case.runs):.0f}")
        gbps = [r.gbps for r in case.runs]
        print(f"{case.name:<52} {case.median():>7.2f} {min(gbps):>6.2f} {max(gbps):>6.2f} "
              f"{100 * case.median() / everything.median():>7.0f}% {statistics.median(ratios):>5.0f}% ({q1:.0f}-{q3:.0f}) "
              f"{cpu:>12} {per_mb:>18} {agents:>17}")
    print("(Gb/s; '% plain': median over plain's median; 'rounds': median and quartiles of each run over the plain "
          "run of its round; CPU µs/MB: sender's and receiver's CPU time per megabyte; agents: the two daemons' CPU "
          "time during the runs)")
    by_phase: dict[int, list[Case]] = {}
    for case, plain in zip(cases, plains):
        by_phase.setdefault(id(plain), []).append(case)
    for ours, *others in (group for group in by_phase.values() if len(group) > 1):
        for other in others:
            ratios = [100 * a.gbps / b.gbps for a, b in zip(ours.runs, other.runs)]
            q1, q3 = quartiles(ratios)
            print(f"{ours.name} over {other.name}, per round: {statistics.median(ratios):.0f} % ({q1:.0f}-{q3:.0f})")
    print("\nour programs' own time (kernel BPF run-time statistics), median per case:")
    for case in cases:
        for name in sorted({k for r in case.runs for k in r.programs}):
            per_run = [r.programs[name][0] / max(1, r.programs[name][1]) for r in case.runs if name in r.programs]
            share = [r.programs[name][0] / 1e9 / r.seconds for r in case.runs if name in r.programs and r.seconds]
            runs = [r.programs[name][1] / r.seconds for r in case.runs if name in r.programs and r.seconds]
            print(f"  {case.name:<48} {name:<14} {statistics.median(per_run):>7.0f} ns/run "
                  f"{statistics.median(runs):>9.0f} runs/s  {100 * statistics.median(share):>5.2f} % of one CPU")
    print(f"load average at start {load[0]}, at end {load[1]}" + (" (agents paused during their runs)" if args.pause_agents else ""))
    print(f"data path counters (hA): {json.dumps(stats)}")


def pause(net: TwoHosts, stop: bool) -> None:
    for proc in net.daemons.values():
        os.kill(proc.pid, signal.SIGSTOP if stop else signal.SIGCONT)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--mtu", type=int, default=1500, help="MTU of every link (9000: jumbo frames)")
    p.add_argument("--repeat", type=int, default=5, help="rounds per case, one run per network each (medians reported)")
    p.add_argument("--pause-agents", action="store_true", help="SIGSTOP the daemons during their runs")
    p.add_argument("--also-paused", action="store_true",
                   help="run each agent network twice a round: daemons running, then SIGSTOPped (a case of its own)")
    p.add_argument("--compare-root", type=Path, metavar="DIR",
                   help="also run the agents of this source tree (e.g. `git archive` of an earlier commit), "
                        "in a third network, interleaved with the other two")
    args = p.parse_args()
    if os.geteuid() != 0:
        print("needs root (it creates network namespaces)", file=sys.stderr)
        return 2
    if args.also_paused and args.pause_agents:
        print("--also-paused and --pause-agents: choose one", file=sys.stderr)
        return 2
    if args.compare_root and not (args.compare_root / "agents" / "shim" / "daemon.py").exists():
        print(f"--compare-root {args.compare_root}: no agents/shim/daemon.py there", file=sys.stderr)
        return 2
    tag = os.getpid() % 100000
    plain_net = TwoHosts(f"mhshimp{tag}", mtu=args.mtu)
    agents = [("agent", TwoHosts(f"mhshimb{tag}", mtu=args.mtu), None)]
    if args.compare_root:
        agents.append((f"agent of {args.compare_root}", TwoHosts(f"mhshimc{tag}", mtu=args.mtu), args.compare_root))
    phases = ("untranslated", "translated (A2->B2 + header)")
    plains = [Case(PLAIN) for _ in phases]
    variants = [(label, False) for label, _, _ in agents]
    if args.also_paused:
        variants = [(label, stopped) for label, _, _ in agents for stopped in (False, True)]
    cases = {(phase, label, stopped): Case(f"{label}{' (paused)' if stopped else ''}, {phase}")
             for phase in phases for label, stopped in variants}
    start_load = loadavg()
    stats_fd = enable_run_time_stats()

    def measure(phase: int, a1: str, b1: str) -> None:
        by_label = {label: net for label, net, _ in agents}
        runs = [(None, False), *((label, args.pause_agents or stopped) for label, stopped in variants)]
        for i in range(args.repeat):
            figures = []
            for label, stopped in runs[i % len(runs):] + runs[:i % len(runs)]:  # each one first in turn
                if label is None:
                    plains[phase].runs.append(iperf(plain_net, args.seconds, a1, b1))
                    figures.append(f"plain {plains[phase].runs[-1].gbps:.2f}")
                    continue
                net = by_label[label]
                case = cases[(phases[phase], label, stopped and not args.pause_agents)]
                if stopped:
                    pause(net, True)
                try:
                    case.runs.append(iperf(net, args.seconds, a1, b1))
                finally:
                    if stopped:
                        pause(net, False)
                figures.append(f"{case.name.rsplit(',', 1)[0]} {case.runs[-1].gbps:.2f}")
            print(f"  {phases[phase]}: {i + 1}/{args.repeat}: {', '.join(figures)} Gb/s", flush=True)

    try:
        plain_net.build()
        for _, net, _ in agents:
            net.build()
        a1, b1 = plain_net.ulids["hA"][0], plain_net.ulids["hB"][0]
        for _, net, root in agents:
            establish(net, b1, root)
        measure(0, a1, b1)
        for _, net, _ in agents:
            switch(net, a1, b1)
        measure(1, a1, b1)
        stats = agents[0][1].ask("hA", cmd="status")["datapath"]
    finally:
        for _, net, _ in agents:
            net.close()
        plain_net.close()
        os.close(stats_fd)
    report(list(cases.values()), [plains[phases.index(phase)] for phase, _, _ in cases], args,
           (start_load, loadavg()), stats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
