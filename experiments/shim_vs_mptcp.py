"""Failover gap of an established TCP connection when ISP A1 fails: shim vs kernel MPTCP.

Runs, each ``--repeat`` times on a fresh lab, two failures of ISP A1's access link: *link down* (routers
answer with ICMP unreachable, which the shim takes as a failure signal) and *silent* (100 % loss, only
REAP's Send Timeout notices), for the shim with tuned timers, the shim with RFC 5534 default timers, and
kernel MPTCP.  Prints median, p95 and max of the failover time (fault -> first record
delivered again on the same connection) and writes reports/shim-vs-mptcp/results.json.

    sudo .venv/bin/python experiments/shim_vs_mptcp.py --repeat 20
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from testbed.kinds import load_lab  # noqa: E402
from testbed.lab import Lab  # noqa: E402
from testbed.scenario.load import LoadedScenario, load_scenario  # noqa: E402
from testbed.scenario.run import run_loaded  # noqa: E402

TOPO = Path(__file__).resolve().parent.parent / "topologies"


def with_profile(topo, profile: str):
    sites = [s.model_copy(update={"options": {**s.options, "profile": profile}}) for s in topo.sites]
    new = topo.model_copy(update={"sites": sites})
    new._source = topo.source
    return new


CASES = {
    "shim tuned, link down": ("shim-link-down.yaml", None),
    "shim tuned, silent": ("shim-silent.yaml", None),
    "shim RFC, silent": ("shim-silent.yaml", "rfc"),  # Send Timeout 15 s: the run is stretched to 40 s
    "MPTCP, link down": ("mptcp-link-down.yaml", None),
    "MPTCP, silent": ("mptcp-silent.yaml", None),
}
RFC_DURATION = 40.0


def one_run(scenario: str, profile: str | None, out: Path) -> tuple[float | None, bool]:
    loaded = load_scenario(TOPO / scenario)
    topo = load_lab(loaded.lab_target()[1])
    if profile:
        topo = with_profile(topo, profile)
    if profile == "rfc":
        longer = loaded.scenario.model_copy(update={"duration": RFC_DURATION, "expect": []})
        loaded = LoadedScenario(longer, loaded.doc, loaded.base_dir)
    lab = Lab.deploy(topo, name="shimvsmp")
    try:
        result = run_loaded(loaded, out, lab=lab).result
    finally:
        lab.destroy()
    est = next(f for f in result.flows if f.name == "est")
    return est.failovers[0].failover_ms if est.failovers else None, est.connections_broken == 0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5, help="runs per case (issue 5 asks for >= 20)")
    ap.add_argument("--cases", default=";".join(CASES), help="';'-separated subset of: " + "; ".join(CASES))
    ap.add_argument("-o", "--output", default="reports/shim-vs-mptcp", help="where results.json goes")
    args = ap.parse_args()
    results: dict[str, dict] = {}
    print(f"{'case':<22} {'runs':>4} {'kept':>5} {'median ms':>10} {'p95 ms':>8} {'max ms':>8}", flush=True)
    for case in args.cases.split(";"):
        scenario, profile = CASES[case]
        gaps, kept = [], 0
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(args.repeat):
                gap, ok = one_run(scenario, profile, Path(tmp) / str(i))
                kept += ok
                if gap is not None:
                    gaps.append(gap)
                print(f"  {case} run {i + 1}: {'%.0f ms' % gap if gap is not None else 'never recovered'}",
                      file=sys.stderr, flush=True)
        results[case] = {"runs": args.repeat, "kept": kept, "failover_ms": gaps}
        if gaps:
            print(f"{case:<22} {args.repeat:>4} {kept:>5} {statistics.median(gaps):>10.0f} {pct(gaps, .95):>8.0f} "
                  f"{max(gaps):>8.0f}", flush=True)
        else:
            print(f"{case:<22} {args.repeat:>4} {kept:>5} {'never':>10}", flush=True)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
