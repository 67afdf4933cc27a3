"""Distribution of the link-down failover gap over many runs, keeping each run's agent logs.

Runs scenarios/shim-vs-mptcp-link-down.yaml (or --scenario) ``--repeat`` times, each in a fresh lab,
and writes, per run, the scenario report and both shim agents' event logs (``hA.shim``, ``hB.shim``:
pair changes, TCP timeouts the agent heard, switches) under ``--output``/NN/, so that an outlier can
be read afterwards.  Prints each run's gap, then min / median / p95 / max for the shim and MPTCP flows.

Two figures per flow: the scenario's ``failover_ms`` and the *interruption*, the delivery gap that
is open at the fault's scheduled time or opens within 0.5 s of it.  They differ when the switch is
faster than the fault's time stamp: ``failover_ms`` is measured from when the fault command
returned (here up to 50 ms after it took effect) and takes the first gap that *ends* after that;
a gap that already closed is skipped and the next jitter gap of the run, seconds later, is
reported instead (the "1-9 s outliers" with both agents switched within 10 ms).
Two more bound it on a loaded machine: ``worst_after``, the longest gap in the second after the fault's
scheduled time (an upper bound of the interruption), and ``worst_before``, the longest gap in a second
before it, with no fault at all (the machine's own delivery jitter: the floor under every figure).
``--summarize`` prints all four from an output directory without running anything.

    sudo .venv/bin/python experiments/shim_link_down_runs.py --repeat 50 --name sfld
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from testbed.kinds import load_lab  # noqa: E402
from testbed.lab import Lab  # noqa: E402
from testbed.scenario.load import load_scenario  # noqa: E402
from testbed.scenario.run import run_loaded  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "scenarios" / "shim-vs-mptcp-link-down.yaml"
FLOWS = ("shim", "mptcp")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def interruption_ms(report: dict, flow: str, scheduled: float) -> float:
    """The gap open at ``scheduled`` or opening within 0.5 s after it, in ms (0 if none)."""
    f = next(x for x in report["flows"] if x["name"] == flow)
    near = [g for g in f["gaps"] if g["end"] > scheduled and g["start"] < scheduled + 0.5]
    return (near[0]["end"] - max(near[0]["start"], scheduled)) * 1000 if near else 0.0


def largest_gap_ms(report: dict, flow: str, start: float, end: float) -> float:
    """The longest delivery gap overlapping [start, end] (its part inside), in ms (0 if none)."""
    f = next(x for x in report["flows"] if x["name"] == flow)
    return max([(min(g["end"], end) - max(g["start"], start)) * 1000 for g in f["gaps"]
                if g["end"] > start and g["start"] < end] or [0.0])


def summarize(out: Path, scheduled: float) -> None:
    """Per flow: ``failover_ms``; the interruption; the longest gap in the second after the fault
    (``worst_after``, an upper bound of the interruption) and, as this machine's noise floor, the
    longest gap in a second before it, without any fault (``worst_before``)."""
    rows = []
    for report_file in sorted(out.glob("[0-9]*/report.json")):
        report = json.loads(report_file.read_text())
        rows.append({flow: (next(x for x in report["flows"] if x["name"] == flow)["failovers"][0]["failover_ms"],
                            interruption_ms(report, flow, scheduled),
                            largest_gap_ms(report, flow, scheduled, scheduled + 1.0),
                            largest_gap_ms(report, flow, scheduled - 1.2, scheduled - 0.2)) for flow in FLOWS})
    for flow in FLOWS:
        for i, what in enumerate(("failover_ms", "interruption", "worst_after", "worst_before")):
            g = [r[flow][i] if r[flow][i] is not None else float("inf") for r in rows]
            print(f"{flow:<6} {what:<13} runs {len(g):>3}  min {min(g):>6.0f}  median {statistics.median(g):>6.0f}  "
                  f"p95 {pct(g, .95):>6.0f}  max {max(g):>6.0f} ms", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--start", type=int, default=0, help="number of the first run (to add runs to an output)")
    ap.add_argument("--scenario", default=str(DEFAULT), help="scenario file (default: the link-down one)")
    ap.add_argument("--name", default="sfld", help="lab name (unique per user of the machine)")
    ap.add_argument("-o", "--output", default="reports/shim-link-down-runs")
    ap.add_argument("--summarize", action="store_true", help="only print the figures of the runs in --output")
    args = ap.parse_args()
    out = Path(args.output)
    scheduled = load_scenario(Path(args.scenario)).scenario.faults[0].at
    if args.summarize:
        summarize(out, scheduled)
        return 0
    gaps: dict[str, list[float]] = {f: [] for f in FLOWS}
    for i in range(args.start, args.start + args.repeat):
        loaded = load_scenario(Path(args.scenario))
        lab = Lab.deploy(load_lab(loaded.lab_target()[1]), name=args.name)
        run_dir = out / f"{i:02d}"
        try:
            result = run_loaded(loaded, run_dir, lab=lab).result
            for node in ("hA", "hB"):
                log = lab[node].dir / "shim.out"
                if log.exists():
                    shutil.copy(log, run_dir / f"{node}.shim")
        finally:
            lab.destroy()
        line = []
        for flow in result.flows:
            if flow.name in FLOWS and flow.failovers:
                ms = flow.failovers[0].failover_ms
                gaps[flow.name].append(ms if ms is not None else float("inf"))
                line.append(f"{flow.name} {'never recovered' if ms is None else f'{ms:.0f} ms'}")
        print(f"run {i + 1}: {', '.join(line)}", flush=True)
    for flow in FLOWS:
        g = gaps[flow]
        if g:
            print(f"{flow:<6} runs {len(g):>3}  min {min(g):>6.0f}  median {statistics.median(g):>6.0f}  "
                  f"p95 {pct(g, .95):>6.0f}  max {max(g):>6.0f} ms", flush=True)
    (out / "gaps.json").write_text(json.dumps(gaps, indent=2) + "\n")
    summarize(out, scheduled)
    return 0


if __name__ == "__main__":
    sys.exit(main())
