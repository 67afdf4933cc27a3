"""iperf3 throughput between ULIDs through the shim data path, baseline in the same run.

Builds its own namespaces (``agents.shim.twohosts``: hosts hA, hB, ISP routers r1, r2), then
measures A1 -> B1 (both ULIDs):

1. plain kernel, no agent;
2. agents running (eBPF data path loaded, context established), untranslated;
3. translated: ISP 1 blackholed, REAP switched the context to (A2, B2), every packet is
   rewritten and carries the 8-octet payload extension header.

Each case runs ``--repeat`` times (iperf3 on a 2-core machine varies by +-20 % from run to
run); the table gives the median, min and max, and the median as a share of plain's median.

Run as root:  python benchmarks/shim_datapath.py [--seconds 5] [--repeat 3] [--mtu 1500]
Targets: untranslated >= 95 % of plain, translated >= 50 % of plain.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.shim.twohosts import TwoHosts, wait_for  # noqa: E402


def iperf(net: TwoHosts, seconds: float, src: str, dst: str) -> float:
    server = net.popen("hB", "iperf3", "-s", "-1", "-B", dst, "-p", "5301", stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    time.sleep(0.4)
    try:
        out = net.run("hA", "iperf3", "-c", dst, "-B", src, "-p", "5301", "-t", str(seconds), "-J")
    finally:
        server.wait(10)
    return json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e9


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--datapath", default="ebpf", choices=["ebpf"])
    p.add_argument("--mtu", type=int, default=1500, help="MTU of every link (9000: jumbo frames)")
    p.add_argument("--repeat", type=int, default=3, help="iperf3 runs per case (median reported)")
    args = p.parse_args()
    if os.geteuid() != 0:
        print("needs root (it creates network namespaces)", file=sys.stderr)
        return 2
    net = TwoHosts(f"mhshimb{os.getpid() % 100000}", mtu=args.mtu)
    rows: list[tuple[str, list[float]]] = []

    def measure(name: str, src: str, dst: str) -> None:
        runs = []
        for i in range(args.repeat):
            runs.append(iperf(net, args.seconds, src, dst))
            print(f"  {name}: run {i + 1}/{args.repeat}: {runs[-1]:.2f} Gb/s", flush=True)
        rows.append((name, runs))

    try:
        net.build()
        a1, b1 = net.ulids["hA"][0], net.ulids["hB"][0]
        measure("plain kernel (no agent)", a1, b1)
        net.start_daemons(args.datapath, "tuned")
        net.ask("hA", cmd="connect", peer=b1)
        if not wait_for(lambda: [c for c in net.ask("hA", cmd="contexts") if c["state"] == "established"], 10):
            raise RuntimeError("no context")
        measure(f"agent ({args.datapath}), untranslated", a1, b1)
        net.blackhole("r1")
        pinger = net.popen("hA", "ping", "-q", "-i", "0.1", "-c", "80", "-I", a1, b1, stdout=subprocess.DEVNULL)
        if not wait_for(lambda: net.ask("hA", cmd="contexts")[0]["datapath"]["translated"], 15):
            raise RuntimeError("no switch: " + net.log("hA")[-2000:])
        pinger.kill()
        measure(f"agent ({args.datapath}), translated (A2->B2 + header)", a1, b1)
        stats = net.ask("hA", cmd="status")["datapath"]
    finally:
        net.close()
    plain = statistics.median(rows[0][1])
    title = f"iperf3 A1 -> B1 (ULIDs), {args.seconds:g} s x {args.repeat}, MTU {args.mtu}"
    print(f"\n{title:<52} {'median':>8} {'min':>6} {'max':>6} {'% plain':>8}  (Gb/s)")
    for name, runs in rows:
        med = statistics.median(runs)
        print(f"{name:<52} {med:>8.2f} {min(runs):>6.2f} {max(runs):>6.2f} {100 * med / plain:>7.0f}%")
    print(f"\ndata path counters (hA): {json.dumps(stats)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
