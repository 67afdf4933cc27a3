"""False switches: does the shim leave a path that drops packets at random, and does TCP pay for it?

Upper-layer feedback makes every TCP timeout (RTO, tail-loss probe) a failure *suspicion*; random
loss causes such timeouts on a path that works.  Per loss rate this deploys a fresh
topologies/two-sites-shim-mptcp.yaml (hA/hB run the shim, mA/mB run no agent on the same LANs,
routers and ISPs) and runs one iperf3 bulk transfer of ``--seconds`` seconds per case, one after
the other, with random loss (both directions) on the sender's own LAN port, so that every
locator pair is equally lossy and no switch can escape the loss: hA -> hB between the ULIDs
(through the shim) and mA -> mB (plain TCP, no shim).  It prints the goodput of both and, for
the shim's sender, the suspicions, the pairs kept (the REAP probe on the pair in use came
back), the switches, and how many of those a failed probe on the pair in use preceded (all of
them should).  The peer (hB) only answers probes; it switches nothing by itself.  It also reports
the CPU time hA's and hB's shim daemons used during each transfer (``/proc/PID/stat``) and how
many packets their observers were handed (``observer.packets`` of ``shimctl status``), so the
agents' own cost is measured beside the goodput it may take, and how many switches were followed
within a second by an answer from the pair left (``late_answers``: the probes were late, not lost).

    sudo .venv/bin/python experiments/shim_false_switches.py --seconds 60 --loss 2,5
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from testbed.faults import prepare  # noqa: E402
from testbed.kinds import load_lab  # noqa: E402
from testbed.lab import Lab  # noqa: E402
from testbed.scenario.model import Loss  # noqa: E402
from testbed.wait import WaitTimeout  # noqa: E402

TOPO = Path(__file__).resolve().parent.parent / "topologies" / "two-sites-shim-mptcp.yaml"
PORT = 5301


def shim_events(lab: Lab, node: str, since: float) -> list[dict]:
    res = lab[node].run([str(Path(sys.executable).parent / "shimctl"), "--socket", str(lab[node].dir / "shim.sock"),
                         "events", "--json"], timeout=20, check=True)
    return [e for e in json.loads(res.stdout) if e["time"] > since]


def daemon_cpu(lab: Lab, node: str) -> float:
    """CPU seconds (user + system) the node's running shim daemon has used (its pid from its ready line)."""
    ready = [json.loads(line) for line in (lab[node].dir / "shim.out").read_text().splitlines()
             if line.startswith('{"kind": "ready"')]
    fields = Path(f"/proc/{ready[-1]['pid']}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def observed_packets(lab: Lab, node: str) -> int:
    res = lab[node].run([str(Path(sys.executable).parent / "shimctl"), "--socket", str(lab[node].dir / "shim.sock"),
                         "status", "--json"], timeout=20, check=True)
    return (json.loads(res.stdout).get("observer") or {}).get("packets", 0)


def daemon_clock(lab: Lab, node: str) -> float:
    events = shim_events(lab, node, -1.0)
    return max((e["time"] for e in events), default=0.0)


def iperf(lab: Lab, client: str, server: str, src: str, dst: str, seconds: float) -> float:
    """Goodput in Mb/s of one iperf3 transfer (receiver's count)."""
    srv = lab[server].popen(["iperf3", "-s", "-1", "-B", dst, "-p", str(PORT)], name="iperf3-fs")
    time.sleep(0.5)
    try:
        res = lab[client].run(["iperf3", "-c", dst, "-B", src, "-p", str(PORT), "-t", str(seconds), "-J"],
                              timeout=seconds + 30, check=True)
    finally:
        try:
            srv.wait(timeout=30)  # it exits after its one test; a loaded machine can take a while
        except subprocess.TimeoutExpired:
            srv.kill()
            srv.wait(timeout=10)
    return json.loads(res.stdout)["end"]["sum_received"]["bits_per_second"] / 1e6


def late_answers(events: list[dict], switches: list[dict]) -> int:
    """Switches after which the pair left proved to work after all, within a second: its probe's answer
    came back after the hold time (late, not lost)."""
    late = 0
    for sw in switches:
        left = [e for e in events if e["kind"] == "pair" and e.get("cause") == "silent-sending" and e["time"] <= sw["time"]]
        if not left:
            continue
        old = (left[-1]["local"], left[-1]["remote"])
        late += any(e["kind"] == "pair" and e.get("cause") == "test-ok" and (e["local"], e["remote"]) == old
                    and sw["time"] < e["time"] <= sw["time"] + 1.0 for e in events)
    return late


def count(events: list[dict]) -> dict[str, int]:
    kinds = [e["kind"] for e in events]
    switches = [e for e in events if e["kind"] == "pair-switched"]
    return {
        "late_answers": late_answers(events, switches),
        "switch_causes": [e.get("cause", "") for e in switches],
        "failure_causes": [e.get("cause", "") for e in events if e["kind"] == "failure-detected"],
        "suspicions": kinds.count("failure-suspected"),
        "kept": kinds.count("pair-kept"),
        "switches": len(switches),
        "switches_after_failed_probe": sum(1 for e in switches if e.get("cause") in ("tcp-rto", "tcp-tlp")),
        "other_failures": kinds.count("failure-detected"),
    }


def deploy(topo, name: str) -> Lab:
    """The lab, with one more try when its bring-up timed out (BGP convergence on a loaded machine)."""
    try:
        return Lab.deploy(topo, name=name)
    except WaitTimeout as exc:
        print(f"bring-up timed out ({exc}); once more", file=sys.stderr, flush=True)
        return Lab.deploy(topo, name=name)


def one_loss(topo, name: str, percent: float, seconds: float) -> dict:
    lab = deploy(topo, name)
    try:
        goodput, counts, cpu, observed = {}, {}, {}, {}
        for case, (client, server) in {"shim": ("hA", "hB"), "plain": ("mA", "mB")}.items():
            fault = prepare(Loss(kind="loss", link=[client, "lan"], percent=percent, at=0), lab)
            since = {n: daemon_clock(lab, n) for n in ("hA", "hB")} if case == "shim" else {}
            cpu0 = {n: daemon_cpu(lab, n) for n in ("hA", "hB")}
            seen0 = {n: observed_packets(lab, n) for n in ("hA", "hB")}
            fault.do()
            try:
                goodput[case] = iperf(lab, client, server, lab.plan.address(client, "ispa1"),
                                      lab.plan.address(server, "ispb1"), seconds)
            finally:
                fault.revert()
            cpu[case] = {n: round(daemon_cpu(lab, n) - cpu0[n], 2) for n in ("hA", "hB")}
            observed[case] = {n: observed_packets(lab, n) - seen0[n] for n in ("hA", "hB")}
            if case == "shim":
                counts = {n: count(shim_events(lab, n, since[n])) for n in ("hA", "hB")}
    finally:
        lab.destroy()
    return {"loss_percent": percent, "seconds": seconds, "shim_mbps": goodput["shim"],
            "plain_mbps": goodput["plain"], "shim": counts, "daemon_cpu_s": cpu, "observer_packets": observed,
            "load_average": os.getloadavg()[0]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="length of each transfer")
    ap.add_argument("--loss", default="2,5", help="comma-separated loss rates (percent) on the sender's LAN port")
    ap.add_argument("--profile", choices=["tuned", "rfc"], default="tuned", help="the shim's timer profile")
    ap.add_argument("--name", default="sffalse", help="lab name (unique per user of the machine)")
    ap.add_argument("-o", "--output", default="reports/shim-false-switches", help="where results.json goes")
    args = ap.parse_args()
    topo = load_lab(TOPO)
    sites = [s.model_copy(update={"options": {**s.options, "profile": args.profile}}) for s in topo.sites]
    topo = topo.model_copy(update={"sites": sites})
    topo._source = load_lab(TOPO).source
    results = []
    print(f"{'loss %':>6} {'shim Mb/s':>10} {'plain Mb/s':>11} {'suspected':>10} {'kept':>5} {'switches':>9} "
          f"{'justified':>10} {'agents CPU-s (shim / plain)':>28} {'observed':>9} {'load':>5}", flush=True)
    for percent in (float(p) for p in args.loss.split(",")):
        r = one_loss(topo, args.name, percent, args.seconds)
        results.append(r)
        a = r["shim"]["hA"]
        cpu = r["daemon_cpu_s"]
        agents = f"{cpu['shim']['hA'] + cpu['shim']['hB']:.1f} / {cpu['plain']['hA'] + cpu['plain']['hB']:.1f}"
        print(f"{percent:>6.1f} {r['shim_mbps']:>10.0f} {r['plain_mbps']:>11.0f} {a['suspicions']:>10} "
              f"{a['kept']:>5} {a['switches']:>9} {a['switches_after_failed_probe']:>10} {agents:>28} "
              f"{sum(r['observer_packets']['shim'].values()):>9} {r['load_average']:>5.1f}", flush=True)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"profile": args.profile, "runs": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
