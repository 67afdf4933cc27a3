"""Proposal 140's claim 2 on real i2pd: what a client sees when the hosting router carrying its requests
dies (or only that router's I2CP session does), naive hack versus balancer, and whether the router's
leases rejoin once it is back.

Modes: ``naive``, ``balancer`` (fair share of all routers' leases), ``primary`` (balancer publishing one
router's leases at a time).  Per run (one lab each, in parallel): N = 3 hosting routers, 1 floodfill, 1 client whose SAM probe sends a
request every 500 ms (lost after 6 s).  After 10 answers in a row the hosting router that carries them is
crashed (its i2pd, or only its Destination process = its I2CP session), observed, restored, observed.
The probe switches to a spare SAM session (kept ready) after 6 losses in a row (``renew``) - an existing
end-to-end session cannot move to another router, see docs/i2p-proposal-140.md - or never (``stock``).

    sudo .venv/bin/python experiments/i2p_continuity.py -o reports/i2p   # one more repetition each time
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from testbed.i2p import faults, observe  # noqa: E402
from testbed.i2p.analysis import answered_fraction, fraction_ok, read_requests, recovery_time  # noqa: E402
from testbed.lab import Lab  # noqa: E402

from experiments.i2p_runs import experiment_parser, model, run_workers, save_report, saved_results  # noqa: E402

RUNS = ["naive-router-renew", "balancer-router-renew", "primary-router-renew", "naive-session-renew",
        "balancer-session-renew", "primary-session-renew", "balancer-router-stock", "primary-router-stock"]


def worker(run: str, observe_s: float, out: Path, prefix: str = "co", reannounce: float | None = None) -> None:
    mode, target, client, *index = run.split("-")  # a copy's index last: balancer-router-renew-2
    run = f"{mode}-{target}-{client}"
    m = model(f"{prefix}{mode[0]}{target[0]}{client[0]}{''.join(index)}", mode, 3, clients=1, debug_floodfills=False)
    if reannounce is not None:
        m = m.model_copy(update={"balancer": m.balancer.model_copy(update={"reannounce_s": reannounce})})
    lab = Lab.deploy(m)
    try:
        log = lab.rundir.path / "probe.jsonl"
        renew = client == "renew"
        faults.start_probe(lab, m, log, every_ms=500, timeout_s=6, renew_after=6 if renew else 0, spare=renew)
        observe.wait_answered(log, 0, 10, 180)
        victim = observe.carrier(lab, m) or "r1"
        fault_at = time.time()
        load_at_fault = round(os.getloadavg()[0], 1)
        record = faults.crash(lab, m, victim, target)  # type: ignore[arg-type]
        dropped_at = None
        while time.time() - fault_at < observe_s:
            if dropped_at is None and victim not in observe.published_routers(lab, m):
                dropped_at = time.time()
            time.sleep(1)
        restored_at = time.time()
        faults.restore(lab, record)
        rejoined_at = None
        while time.time() - restored_at < 90 and rejoined_at is None:
            if observe.rejoined(lab, m, victim):
                rejoined_at = time.time()
            time.sleep(1)
        time.sleep(5)
        reqs = read_requests(log)
        during = [r for r in reqs if r.sent < restored_at]
        result = {
            "run": run, "mode": mode, "target": target, "client": client, "victim": victim,
            "fault_at": fault_at, "observe_s": observe_s,
            "leases_dropped_after_s": None if dropped_at is None else round(dropped_at - fault_at, 1),
            "recovery_s": recovery_time(during, fault_at),
            "answered_after_fault": fraction_ok(reqs, fault_at, restored_at),
            "answered_before_fault": fraction_ok(reqs, fault_at - 60, fault_at),
            "first_ok_s": next((round(r.sent - fault_at, 1) for r in during if r.sent >= fault_at and r.ok), None),
            "rejoined_after_s": None if rejoined_at is None else round(rejoined_at - restored_at, 1),
            "bins": answered_fraction(reqs, fault_at - 20, restored_at, 5.0),
            "renewals": sum(1 for line in log.read_text().splitlines() if '"ev":"renew"' in line),
            "reannounce_s": m.balancer.reannounce_s,
            "load": [load_at_fault, round(os.getloadavg()[0], 1)],  # 1-min load average at the fault, at the end
        }
        out.write_text(json.dumps(result))
    finally:
        lab.destroy()


def median(values: list[float | None]) -> float | None:
    """Median where None (never happened within the run) counts as worse than any value."""
    m = statistics.median([math.inf if v is None else v for v in values]) if values else math.inf
    return None if math.isinf(m) else m


def spread(values: list[float | None], spec: str = ".0f") -> str:
    """median [min-max] over the runs, None (never within the run) counting as worse than any value; how
    many never, if any."""
    if not values:
        return "-"
    fmt = lambda v: "never" if v is None or math.isinf(v) else format(v, spec)  # noqa: E731
    ordered = sorted(math.inf if v is None else v for v in values)
    never = sum(v is None for v in values)
    return (f"{fmt(median(values))} [{fmt(ordered[0])}–{fmt(ordered[-1])}]"
            + (f" ({never} never)" if never else ""))


def loads(rs: list[dict[str, Any]]) -> str:
    """The 1-min load averages recorded with the runs (at the fault and at the end), as a range."""
    xs = [x for r in rs for x in r.get("load", [])]
    return f"{min(xs):.0f}-{max(xs):.0f}" if xs else "-"


def binned(rs: list[dict[str, Any]]) -> tuple[list[float], list[float], list[float], list[float]]:
    """Per 5 s bin from 20 s before the fault: time, mean and quartiles of the fraction answered over the
    runs that have the bin (the mean, because the runs lose requests at different moments: a median of
    0/1 bins hides them)."""
    per: dict[float, list[float]] = {}
    for r in rs:
        for x, y in r["bins"]:
            per.setdefault(x, []).append(y)
    xs = sorted(per)
    q = [statistics.quantiles(per[x], n=4, method="inclusive") if len(per[x]) > 1 else [per[x][0]] * 3 for x in xs]
    return ([x - 20 for x in xs], [statistics.fmean(per[x]) for x in xs], [v[0] for v in q], [v[2] for v in q])


def report(reps: list[list[dict[str, Any]]], out: Path) -> str:
    """One row per run (mode-fault-client): how many runs, how many recovered, and median [min-max] over
    them of what the client saw; the plot shows each router-crash row's answered fraction over time
    (mean and quartiles of the runs)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_run: dict[str, list[dict[str, Any]]] = {}
    for rep in reps:
        for r in rep:
            by_run.setdefault(r["run"], []).append(r)
    lines = ["Continuity: the hosting router carrying the requests dies at t = 0 (N = 3); per row the runs, how "
             "many recovered within the observation, and median [min–max] over the runs (never = not within the run)",
             " | ".join(["run", "runs", "recovered", "answered after the fault", "recovery s", "first answer s",
                         "leases gone s", "rejoin s", "renewals", "load"])]
    for run in sorted(by_run, key=lambda r: RUNS.index(r) if r in RUNS else 99):
        rs = by_run[run]
        lines.append(" | ".join([
            run, str(len(rs)), str(sum(r["recovery_s"] is not None for r in rs)),
            spread([r["answered_after_fault"] for r in rs], ".2f"), spread([r["recovery_s"] for r in rs]),
            spread([r.get("first_ok_s") for r in rs], ".1f"), spread([r["leases_dropped_after_s"] for r in rs], ".1f"),
            spread([r["rejoined_after_s"] for r in rs]), spread([r.get("renewals") for r in rs]), loads(rs)]))
    lines.append("each run: recovery s / answered")
    for run in sorted(by_run, key=lambda r: RUNS.index(r) if r in RUNS else 99):
        each = ", ".join(f"{'-' if r['recovery_s'] is None else round(r['recovery_s'])}/{r['answered_after_fault']:.2f}"
                         for r in by_run[run])
        lines.append(f"  {run}: {each}")
    text = "\n".join(lines)
    fig, ax = plt.subplots(figsize=(9, 4))
    for run, rs in sorted(by_run.items(), key=lambda kv: RUNS.index(kv[0]) if kv[0] in RUNS else 99):
        rs = [r for r in rs if r["bins"]]
        if run.endswith("router-renew") and rs:
            xs, mid, lo, hi = binned(rs)
            line, = ax.plot(xs, mid, drawstyle="steps-post", label=f"{run} ({len(rs)} runs)")
            ax.fill_between(xs, lo, hi, step="post", alpha=0.15, color=line.get_color())
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel("seconds since the hosting router died")
    ax.set_ylabel("fraction of requests answered (5 s bins)\nmean of the runs, quartiles shaded")
    ax.set_ylim(-0.05, 1.05)
    ax.legend(fontsize=8)
    return save_report(fig, text, out, "i2p_continuity")


def main() -> int:
    p = experiment_parser(__doc__)
    p.add_argument("--observe", type=float, default=150.0, help="seconds observed after the fault")
    p.add_argument("--runs", default=",".join(RUNS))
    p.add_argument("--copies", type=int, default=1, help="labs per run in each repetition, side by side "
                   "(default 1)")
    p.add_argument("--prefix", default="co", help="lab-name prefix (labs are <prefix><mode><fault><client>, e.g. cobrr)")
    p.add_argument("--reannounce", type=float, metavar="S", help="the balancer's re-announcements after a fault, "
                   "every S seconds (lab balancer.reannounce_s; default: the lab default)")
    p.add_argument("--worker", nargs=1, metavar="RUN", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args.worker[0], args.observe, args.out, args.prefix, args.reannounce)
        return 0
    args.output.mkdir(parents=True, exist_ok=True)
    base = args.output / "continuity"
    if not args.report_only:
        rep = next(base / f"rep{k}" for k in range(1, 1000) if not (base / f"rep{k}").exists())
        rep.mkdir(parents=True)
        extra = ["--observe", str(args.observe), "--prefix", args.prefix]
        extra += [] if args.reannounce is None else ["--reannounce", str(args.reannounce)]
        jobs = [[r] if args.copies == 1 else [f"{r}-{k}"] for r in args.runs.split(",") for k in range(args.copies)]
        run_workers("i2p_continuity", jobs, rep, extra)
    reps = [rep for d in sorted(base.glob("rep*")) if (rep := saved_results(d, "run"))]
    print(report(reps, args.output))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
