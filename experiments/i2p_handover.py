"""Continuity for a client that keeps its end-to-end session: the balancer's handover on real i2pd.

A stock SAM client (no spare session, no renewal) sends a request every 500 ms to a Destination on 2
hosting routers under the ``primary`` policy, in a network of 7 routers (2 floodfills, 3 clients).  Once the client's session is older than 120 s (i2pd
2.45.1 replaces a session only after ``ECIESX25519_RESTART_TIMEOUT``), the router carrying its requests
is crashed; ``--observe`` seconds later it is restored, and once it is back as a standby the next
crash (of the new carrier) follows, ``--cycles`` times per lab.  ``handover`` labs run the backend's
handover (docs/i2p-proposal-140.md), ``plain`` labs the same balancer with ``--no-handover``.
Recovery = seconds from the crash until every later request (within the observation) was answered.

    sudo .venv/bin/python experiments/i2p_handover.py -o reports/i2p --labs handover,handover,handover,plain
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from testbed.i2p import faults, observe  # noqa: E402
from testbed.i2p.analysis import read_requests, recovery_time  # noqa: E402
from testbed.i2p.topology import BalancerOptions, I2pLab  # noqa: E402
from testbed.lab import Lab  # noqa: E402

from experiments.i2p_runs import experiment_parser, run_workers, save_report, saved_results  # noqa: E402

SESSION_MIN_AGE_S = 125.0  # i2pd's ECIESX25519_RESTART_TIMEOUT (120 s) plus a margin
TIMEOUT_S = 5.0


def worker(kind: str, index: int, cycles: int, observe_s: float, prefix: str, out: Path,
           loglevel: str = "info") -> None:
    name = f"{prefix}{kind[0]}{index}"
    # 3 client routers (the probe runs on c1): in a network of 4 routers, most tunnels of the client and
    # of the survivor go through the crashed router and die with it
    m = I2pLab(name=name, hosting=2, clients=3, floodfills=2, seed=f"exp-{name}",
               loglevel=loglevel, balancer=BalancerOptions(policy="primary", handover=kind == "handover"))
    lab = Lab.deploy(m)
    runs: list[dict[str, Any]] = []
    try:
        log = lab.rundir.path / "probe.jsonl"
        faults.start_probe(lab, m, log, every_ms=500, timeout_s=TIMEOUT_S)
        session_since = observe.wait_answered(log, 0, 10, 240)
        for cycle in range(cycles):
            time.sleep(max(0.0, session_since + SESSION_MIN_AGE_S - time.time()))
            victim = observe.carrier(lab, m) or "r1"
            fault_at = time.time()
            record = faults.crash(lab, m, victim, "router")
            time.sleep(observe_s)
            faults.restore(lab, record)
            reqs = [r for r in read_requests(log) if r.sent < fault_at + observe_s - TIMEOUT_S]
            rec = recovery_time(reqs, fault_at)
            after = [r for r in reqs if r.sent >= fault_at]
            runs.append({"cycle": cycle, "victim": victim, "fault_at": fault_at, "recovery_s": rec,
                         "answered_after_fault": round(sum(r.ok for r in after) / len(after), 3) if after else None,
                         "first_ok_s": next((round(r.sent - fault_at, 2) for r in after if r.ok), None)})
            print(f"{name} cycle {cycle}: {victim} crashed, recovery {rec}", flush=True)
            # the client's session now lives in the survivor: its age counts from the recovery
            session_since = fault_at + (rec if rec is not None else observe_s)
            deadline = time.time() + 90
            while time.time() < deadline and not observe.rejoined(lab, m, victim):
                time.sleep(1)
            out.write_text(json.dumps({"handover_kind": kind, "lab": name, "runs": runs}))
    finally:
        keep_logs(lab, m, out.with_suffix(""))
        lab.destroy()


def keep_logs(lab: Lab, m: I2pLab, folder: Path) -> None:
    """Copy the routers' i2pd logs and the probe's log next to the result (destroy removes the lab)."""
    folder.mkdir(parents=True, exist_ok=True)
    for node, _ in m.routers():
        src = lab.node(node).dir / "i2pd.log"
        if src.exists():
            shutil.copy(src, folder / f"{node}-i2pd.log")
    for src in lab.rundir.path.glob("*.jsonl"):
        shutil.copy(src, folder / src.name)


def report(results: list[dict[str, Any]], out: Path) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = ["Continuity with a client that keeps its session (stock SAM DATAGRAM client, primary policy, "
             "N = 2): the carrying router crashes", f"{'kind':<9} {'runs':>4} {'recovered':>9} {'<=10 s':>6} "
             f"{'median s':>8} {'max s':>6}   each run's recovery (s; - = not within the observation)"]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for i, kind in enumerate(("handover", "plain")):
        runs = [run for r in results if r["handover_kind"] == kind for run in r["runs"]]
        if not runs:
            continue
        recs = [run["recovery_s"] for run in runs]
        done = [x for x in recs if x is not None]
        lines.append(f"{kind:<9} {len(runs):>4} {len(done):>9} {sum(x <= 10 for x in done):>6} "
                     f"{statistics.median(done) if done else float('nan'):>8.1f} {max(done) if done else float('nan'):>6.1f}   "
                     + " ".join("-" if x is None else f"{x:.1f}" for x in recs))
        ax.scatter([x if x is not None else 32 for x in recs], [i] * len(recs), alpha=0.6,
                   marker="o" if kind == "handover" else "x", s=50)
    lines.append("per lab, crash by crash: " + "; ".join(
        f"{r['lab']}: " + " ".join("-" if run["recovery_s"] is None else f"{run['recovery_s']:.1f}" for run in r["runs"])
        for r in sorted(results, key=lambda r: r["lab"])))
    ax.axvline(10, color="grey", ls=":", label="goal: 10 s")
    present = [i for i, kind in enumerate(("handover", "plain")) if any(r["handover_kind"] == kind for r in results)]
    ax.set_yticks(present, [("handover", "no handover")[i] for i in present])
    ax.set_ylim(min(present, default=0) - 0.7, max(present, default=1) + 0.7)
    ax.set_xlabel("recovery after the crash (s); not recovered plotted at 32")
    runs = sum(len(r["runs"]) for r in results)
    ax.set_title(f"Stock client keeping its session, carrying router crashed ({runs} crashes)")
    ax.legend()
    return save_report(fig, "\n".join(lines), out, "i2p_handover")


def main() -> int:
    p = experiment_parser(__doc__)
    p.add_argument("--labs", default="handover,handover,plain", help="one lab per entry: handover or plain")
    p.add_argument("--cycles", type=int, default=4, help="crashes per lab")
    p.add_argument("--observe", type=float, default=30.0, help="seconds observed after each crash")
    p.add_argument("--prefix", default="i2ho", help="lab names: PREFIX + h|p + index")
    p.add_argument("--loglevel", default="info", choices=("info", "debug"),
                   help="the routers' i2pd log level (debug shows each garlic session decision)")
    p.add_argument("--worker", nargs=2, metavar=("KIND", "INDEX"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args.worker[0], int(args.worker[1]), args.cycles, args.observe, args.prefix, args.out,
               args.loglevel)
        return 0
    args.output.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        results = saved_results(args.output, "handover_kind")
    else:
        jobs = [[kind, str(i)] for i, kind in enumerate(args.labs.split(","))]
        results = run_workers("i2p_handover", jobs, args.output,
                              ["--cycles", str(args.cycles), "--observe", str(args.observe), "--prefix", args.prefix,
                               "--loglevel", args.loglevel])
    print(report(results, args.output))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
