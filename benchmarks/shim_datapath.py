"""iperf3 throughput between ULIDs through the shim data path, plain kernel interleaved with it.

Builds two identical private networks of namespaces (``agents.shim.twohosts``: hosts hA, hB,
ISP routers r1, r2): one never runs an agent (the plain kernel), the other runs both agents.
It measures A1 -> B1 (both ULIDs) in ``--repeat`` pairs of runs, a plain run right before each
agent run, so that the machine's load (other labs, other users) hits both alike:

1. plain kernel, no agent;
2. agents running (eBPF data path loaded, context established), untranslated;
3. translated: ISP 1 blackholed, REAP switched the context to (A2, B2), every packet is
   rewritten at hA's eth2 egress and carries the 8-octet payload extension header.

The table gives the median, min and max of each case, the median as a share of plain's median,
the median of the per-pair ratios (the steadier figure on a loaded machine) and iperf3's CPU
figures (sender's and receiver's host share); then our programs' own time from the kernel's BPF
run-time statistics, and the load average at start and end.  ``--pause-agents`` stops the two
daemons (SIGSTOP) during the agent runs: the kernel data path goes on alone, and on a
saturated machine their own polling no longer competes with iperf3 for a core.

Run as root:  python benchmarks/shim_datapath.py [--seconds 5] [--repeat 5] [--mtu 1500]
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

CASES = ("plain kernel (no agent)", "agent, untranslated", "agent, translated (A2->B2 + header)")


@dataclass
class Run:
    gbps: float
    cpu_sender: float
    cpu_receiver: float
    retransmits: int
    seconds: float = 0.0
    programs: dict[str, tuple[int, int]] = field(default_factory=dict)  # "hA shim_out" -> (ns, runs)


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
    server = net.popen("hB", "iperf3", "-s", "-1", "-B", dst, "-p", "5301", stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    time.sleep(0.4)
    try:
        out = net.run("hA", "iperf3", "-c", dst, "-B", src, "-p", "5301", "-t", str(seconds), "-J")
    finally:
        server.wait(10)
    end = json.loads(out)["end"]
    cpu = end["cpu_utilization_percent"]
    after = program_times(net)
    programs = {k: (v[0] - before.get(k, (0, 0))[0], v[1] - before.get(k, (0, 0))[1]) for k, v in after.items()}
    return Run(end["sum_received"]["bits_per_second"] / 1e9, cpu["host_total"], cpu["remote_total"],
               end["sum_sent"].get("retransmits", 0), end["sum_received"]["seconds"], programs)


def establish(net: TwoHosts, peer: str) -> None:
    net.start_daemons("ebpf", "tuned")
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


def report(cases: list[Case], plains: list[Case], args: argparse.Namespace, load: tuple[str, str],
           stats: dict) -> None:
    everything = Case(CASES[0], [r for c in plains for r in c.runs])
    title = f"iperf3 A1 -> B1 (ULIDs), {args.seconds:g} s x {args.repeat}, MTU {args.mtu}"
    print(f"\n{title:<44} {'median':>7} {'min':>6} {'max':>6} {'% plain':>8} {'pairs':>7} {'cpu snd/rcv':>12}")
    for case, plain in [(everything, everything), *zip(cases, plains)]:
        ratios = [r.gbps / p.gbps for r, p in zip(case.runs, plain.runs)]
        cpu = (f"{statistics.median(r.cpu_sender for r in case.runs):.0f}/"
               f"{statistics.median(r.cpu_receiver for r in case.runs):.0f} %")
        gbps = [r.gbps for r in case.runs]
        print(f"{case.name:<44} {case.median():>7.2f} {min(gbps):>6.2f} {max(gbps):>6.2f} "
              f"{100 * case.median() / everything.median():>7.0f}% {100 * statistics.median(ratios):>6.0f}% {cpu:>12}")
    print("(Gb/s; '% plain': median over plain's median; 'pairs': median of each run over the plain run just before)")
    print("\nour programs' own time (kernel BPF run-time statistics), median per case:")
    for case in cases:
        for name in sorted({k for r in case.runs for k in r.programs}):
            per_run = [r.programs[name][0] / max(1, r.programs[name][1]) for r in case.runs if name in r.programs]
            share = [r.programs[name][0] / 1e9 / r.seconds for r in case.runs if name in r.programs and r.seconds]
            runs = [r.programs[name][1] / r.seconds for r in case.runs if name in r.programs and r.seconds]
            print(f"  {case.name:<40} {name:<14} {statistics.median(per_run):>7.0f} ns/run "
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
    p.add_argument("--repeat", type=int, default=5, help="pairs of runs per case (medians reported)")
    p.add_argument("--pause-agents", action="store_true", help="SIGSTOP the daemons during their runs")
    args = p.parse_args()
    if os.geteuid() != 0:
        print("needs root (it creates network namespaces)", file=sys.stderr)
        return 2
    tag = os.getpid() % 100000
    plain_net, net = TwoHosts(f"mhshimp{tag}", mtu=args.mtu), TwoHosts(f"mhshimb{tag}", mtu=args.mtu)
    cases = [Case(name) for name in CASES[1:]]
    plains = [Case(CASES[0]) for _ in cases]
    start_load = loadavg()
    stats_fd = enable_run_time_stats()

    def measure(index: int, a1: str, b1: str) -> None:
        for i in range(args.repeat):
            plains[index].runs.append(iperf(plain_net, args.seconds, a1, b1))
            if args.pause_agents:
                pause(net, True)
            try:
                cases[index].runs.append(iperf(net, args.seconds, a1, b1))
            finally:
                if args.pause_agents:
                    pause(net, False)
            print(f"  {cases[index].name}: {i + 1}/{args.repeat}: plain {plains[index].runs[-1].gbps:.2f}, "
                  f"agent {cases[index].runs[-1].gbps:.2f} Gb/s", flush=True)

    try:
        plain_net.build()
        net.build()
        a1, b1 = net.ulids["hA"][0], net.ulids["hB"][0]
        establish(net, b1)
        measure(0, a1, b1)
        switch(net, a1, b1)
        measure(1, a1, b1)
        stats = net.ask("hA", cmd="status")["datapath"]
    finally:
        net.close()
        plain_net.close()
        os.close(stats_fd)
    report(cases, plains, args, (start_load, loadavg()), stats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
