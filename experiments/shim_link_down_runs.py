"""Distribution of the link-down failover gap over many runs, keeping each run's agent logs.

Runs topologies/shim-vs-mptcp-link-down.yaml (or --scenario) ``--repeat`` times, each in a fresh lab,
and writes, per run, the scenario report and both shim agents' event logs (``hA.shim``, ``hB.shim``:
pair changes, TCP timeouts the agent heard, switches) under ``--output``/NN/, so that an outlier can
be read afterwards.  Prints each run's gap, then min / median / p95 / max for the shim and MPTCP flows.

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
DEFAULT = ROOT / "topologies" / "shim-vs-mptcp-link-down.yaml"
FLOWS = ("shim", "mptcp")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--start", type=int, default=0, help="number of the first run (to add runs to an output)")
    ap.add_argument("--scenario", default=str(DEFAULT), help="scenario file (default: the link-down one)")
    ap.add_argument("--name", default="sfld", help="lab name (unique per user of the machine)")
    ap.add_argument("-o", "--output", default="reports/shim-link-down-runs")
    args = ap.parse_args()
    out = Path(args.output)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
