"""False switches: does the shim leave a path that drops packets at random, and does TCP pay for it?

Upper-layer feedback makes a TCP timeout (RTO, tail-loss probe) a failure *suspicion*; random loss
causes such timeouts on a path that works.  Per loss rate this deploys one
topologies/two-sites-shim-mptcp.yaml (hA/hB run the shim, mA/mB run no agent on the same LANs,
routers and ISPs) and runs ``--pairs`` *pairs* of iperf3 bulk transfers of ``--seconds`` seconds:
plain TCP mA -> mB, then right after it hA -> hB between the ULIDs (through the shim), each with
random loss (both directions) on the sender's own LAN port, so that every locator pair is equally
lossy and no switch can escape the loss.  A pair's ratio compares two transfers a few seconds
apart, so the machine's load (other labs) moves both alike; the verdict is the median of the
ratios, printed beside the median goodputs.

Per shim transfer it reports what the shim did and what it cost: the TCP timeouts the agent heard
and how many it took as failure signals (``tcp-timeout`` lines of hA's log), suspicions, pairs
kept (the REAP probe on the pair in use came back), switches, and how many of those a failed probe
on the pair in use preceded, control messages hA sent (probes, keepalives), the share of the
sender's bytes that went translated (off the ULID pair), TCP's retransmissions (iperf3), the CPU
time hA's and hB's daemons used (``/proc/PID/stat``) and how many packets their observers were
handed.  The peer (hB) only answers probes; it switches nothing by itself.

    sudo .venv/bin/python experiments/shim_false_switches.py --profile rfc --loss 5 --pairs 5
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from testbed.faults import prepare  # noqa: E402
from testbed.kinds import load_lab  # noqa: E402
from testbed.lab import Lab  # noqa: E402
from testbed.procs import cpu_seconds  # noqa: E402
from testbed.scenario.model import Loss  # noqa: E402
from testbed.wait import WaitTimeout  # noqa: E402

TOPO = Path(__file__).resolve().parent.parent / "topologies" / "two-sites-shim-mptcp.yaml"
PORT = 5301
NODES = ("hA", "hB")


def shimctl(lab: Lab, node: str, *args: str):
    res = lab[node].run([str(Path(sys.executable).parent / "shimctl"), "--socket", str(lab[node].dir / "shim.sock"),
                         *args, "--json"], timeout=20, check=True)
    return json.loads(res.stdout)


def shim_events(lab: Lab, node: str, since: float) -> list[dict]:
    return [e for e in shimctl(lab, node, "events") if e["time"] > since]


def daemon_log(lab: Lab, node: str) -> list[dict]:
    """The daemon's own log lines (JSON), of its current run (after its last ready line)."""
    lines = [json.loads(line) for line in (lab[node].dir / "shim.out").read_text().splitlines()
             if line.startswith("{")]
    ready = max((i for i, e in enumerate(lines) if e.get("kind") == "ready"), default=0)
    return lines[ready:]


def daemon_cpu(lab: Lab, node: str) -> float:
    """CPU seconds (user + system) the node's running shim daemon has used (its pid from its ready line)."""
    return cpu_seconds(daemon_log(lab, node)[0]["pid"])


def daemon_clock(lab: Lab, node: str) -> float:
    times = [e["time"] for e in shim_events(lab, node, -1.0)] + [e["time"] for e in daemon_log(lab, node) if "time" in e]
    return max(times, default=0.0)


def snapshot(lab: Lab) -> dict:
    """Cumulative counters of both daemons: CPU, observer packets, control messages sent, bytes by path."""
    out = {}
    for n in NODES:
        status = shimctl(lab, n, "status")
        counters = {"translated": 0, "ulid": 0}
        for ctx in shimctl(lab, n, "contexts"):
            c = (ctx.get("datapath") or {}).get("counters", {})
            counters["translated"] += c.get("translated_out", {}).get("bytes", 0)
            counters["ulid"] += c.get("ulid_out", {}).get("bytes", 0)
        out[n] = {"cpu": daemon_cpu(lab, n), "observed": (status.get("observer") or {}).get("packets", 0),
                  "sent": status.get("counters", {}).get("sent", 0), **counters}
    return out


def iperf(lab: Lab, client: str, server: str, src: str, dst: str, seconds: float) -> tuple[float, int]:
    """(goodput in Mb/s, the receiver's count; the sender's TCP retransmissions) of one iperf3 transfer."""
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
    end = json.loads(res.stdout)["end"]
    return end["sum_received"]["bits_per_second"] / 1e6, end["sum_sent"].get("retransmits", 0)


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


def count(events: list[dict], log: list[dict]) -> dict:
    kinds = [e["kind"] for e in events]
    switches = [e for e in events if e["kind"] == "pair-switched"]
    heard = [e for e in log if e.get("kind") == "tcp-timeout"]
    return {
        "tcp_timeouts": {k: sum(1 for e in heard if e["timeout"] == k) for k in ("tcp-rto", "tcp-tlp")},
        "tcp_timeouts_answered": sum(1 for e in heard if e.get("answered")),  # an ACK followed: no signal
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


def transfer(lab: Lab, client: str, server: str, percent: float, seconds: float) -> tuple[float, int]:
    fault = prepare(Loss(kind="loss", link=[client, "lan"], percent=percent, at=0), lab)
    fault.do()
    try:
        return iperf(lab, client, server, lab.plan.address(client, "ispa1"), lab.plan.address(server, "ispb1"), seconds)
    finally:
        fault.revert()


def one_pair(lab: Lab, percent: float, seconds: float) -> dict:
    """Plain TCP, then the shim right after it, under the same loss."""
    before = snapshot(lab)
    plain, plain_retrans = transfer(lab, "mA", "mB", percent, seconds)
    between = snapshot(lab)
    since = {n: daemon_clock(lab, n) for n in NODES}
    shim, shim_retrans = transfer(lab, "hA", "hB", percent, seconds)
    after = snapshot(lab)
    counts = {n: count(shim_events(lab, n, since[n]), [e for e in daemon_log(lab, n) if e.get("time", -1) > since[n]])
              for n in NODES}
    sent = after["hA"]["translated"] - between["hA"]["translated"]
    total = sent + after["hA"]["ulid"] - between["hA"]["ulid"]
    return {"loss_percent": percent, "seconds": seconds, "shim_mbps": shim, "plain_mbps": plain,
            "ratio": shim / plain if plain else None, "retransmits": {"shim": shim_retrans, "plain": plain_retrans},
            "translated_share": sent / total if total else 0.0, "shim": counts,
            "control_sent": {n: after[n]["sent"] - between[n]["sent"] for n in NODES},
            "daemon_cpu_s": {"shim": {n: round(after[n]["cpu"] - between[n]["cpu"], 2) for n in NODES},
                             "plain": {n: round(between[n]["cpu"] - before[n]["cpu"], 2) for n in NODES}},
            "observer_packets": {n: after[n]["observed"] - between[n]["observed"] for n in NODES},
            "load_average": os.getloadavg()[0]}


HEADER = (f"{'loss %':>6} {'pair':>4} {'plain Mb/s':>10} {'shim Mb/s':>10} {'ratio':>6} {'retrans p/s':>13} "
          f"{'timeouts rto/tlp':>16} {'suspected':>9} {'kept':>5} {'switches':>8} {'ctl sent':>8} "
          f"{'translated':>10} {'agents CPU-s':>12} {'load':>5}")


def row(i: int, r: dict) -> str:
    a = r["shim"]["hA"]
    cpu = r["daemon_cpu_s"]["shim"]
    t = a["tcp_timeouts"]
    return (f"{r['loss_percent']:>6.1f} {i:>4} {r['plain_mbps']:>10.0f} {r['shim_mbps']:>10.0f} {r['ratio']:>6.0%} "
            f"{r['retransmits']['plain']:>6}/{r['retransmits']['shim']:<6} {t['tcp-rto']:>7}/{t['tcp-tlp']:<8} "
            f"{a['suspicions']:>9} {a['kept']:>5} {a['switches']:>8} {r['control_sent']['hA']:>8} "
            f"{r['translated_share']:>10.0%} {cpu['hA'] + cpu['hB']:>12.1f} {r['load_average']:>5.1f}")


def verdict(percent: float, runs: list[dict]) -> str:
    ratios = [r["ratio"] for r in runs if r["ratio"] is not None]
    shim = statistics.median(r["shim_mbps"] for r in runs)
    plain = statistics.median(r["plain_mbps"] for r in runs)
    return (f"{percent:.1f} % loss, {len(runs)} pairs: median of ratios {statistics.median(ratios):.0%} "
            f"(min {min(ratios):.0%}, max {max(ratios):.0%}); median goodput shim {shim:.0f} Mb/s, "
            f"plain {plain:.0f} Mb/s ({shim / plain:.0%}); switches {sum(r['shim']['hA']['switches'] for r in runs)}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="length of each transfer")
    ap.add_argument("--loss", default="2,5", help="comma-separated loss rates (percent) on the sender's LAN port")
    ap.add_argument("--pairs", type=int, default=5, help="plain-then-shim transfer pairs per loss rate")
    ap.add_argument("--profile", choices=["tuned", "rfc"], default="tuned", help="the shim's timer profile")
    ap.add_argument("--name", default="sffalse", help="lab name (unique per user of the machine)")
    ap.add_argument("-o", "--output", default="reports/shim-false-switches", help="where results.json goes")
    args = ap.parse_args()
    topo = load_lab(TOPO)
    sites = [s.model_copy(update={"options": {**s.options, "profile": args.profile}}) for s in topo.sites]
    topo = topo.model_copy(update={"sites": sites})
    topo._source = load_lab(TOPO).source
    results, verdicts = [], []
    print(HEADER, flush=True)
    for percent in (float(p) for p in args.loss.split(",")):
        lab = deploy(topo, args.name)
        runs = []
        try:
            for i in range(args.pairs):
                runs.append(one_pair(lab, percent, args.seconds))
                print(row(i + 1, runs[-1]), flush=True)
        finally:
            lab.destroy()
        results += runs
        verdicts.append(verdict(percent, runs))
        print(verdicts[-1], flush=True)
    print("\n".join(verdicts), flush=True)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"profile": args.profile, "runs": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
