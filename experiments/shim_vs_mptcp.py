"""Failover gap of an established TCP connection when ISP A1 fails: shim vs kernel MPTCP, side by side.

Every run deploys one lab (topologies/two-sites-shim-mptcp.yaml: hA/hB run the shim agent, mA/mB kernel
MPTCP, on the same LANs, routers and ISPs) and runs one scenario with two connections, hA -> hB and
mA -> mB, both starting on ISP A1 -> ISP B1; one fault hits both at the same instant.  Cases: *link down*
(routers answer with ICMP unreachable, which the shim takes as a failure signal) and *silent* (100 % loss,
TCP's timeouts and REAP notice), with the shim's tuned timers and with RFC 5534 default timers (MPTCP is
the same in both).  Prints, per case and mechanism, median, p95 and max of the failover time (fault ->
first record delivered again on the same connection) and the load average when the case ended (2 shared
cores), and writes reports/shim-vs-mptcp/results.json.

    sudo .venv/bin/python experiments/shim_vs_mptcp.py --repeat 20
"""

from __future__ import annotations

import argparse
import json
import os
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
SCEN = TOPO.parent / "scenarios"


def with_profile(topo, profile: str):
    return topo.variant(sites=[s.model_copy(update={"options": {**s.options, "profile": profile}})
                               for s in topo.sites])


CASES = {
    "link down, shim tuned": ("shim-vs-mptcp-link-down.yaml", None),
    "link down, shim RFC": ("shim-vs-mptcp-link-down.yaml", "rfc"),
    "silent, shim tuned": ("shim-vs-mptcp-silent.yaml", None),
    "silent, shim RFC": ("shim-vs-mptcp-silent.yaml", "rfc"),  # Send Timeout 15 s: the run is stretched to 40 s
}
STRETCHED = {"silent, shim RFC"}
FLOWS = ("shim", "mptcp")
RFC_DURATION = 40.0


def one_run(scenario: str, profile: str | None, out: Path, name: str = "shimvsmp",
            stretch: bool = False) -> dict[str, tuple[float | None, bool]]:
    """{flow: (failover ms or None, connection kept)} for the shim flow and the MPTCP flow of one run."""
    loaded = load_scenario(SCEN / scenario)
    topo = load_lab(loaded.lab_target()[1])
    if profile:
        topo = with_profile(topo, profile)
    if stretch:
        longer = loaded.scenario.model_copy(update={"duration": RFC_DURATION, "expect": []})
        loaded = LoadedScenario(longer, loaded.doc, loaded.base_dir)
    lab = Lab.deploy(topo, name=name)
    try:
        result = run_loaded(loaded, out, lab=lab).result
    finally:
        lab.destroy()
    found = {}
    for flow in result.flows:
        if flow.name in FLOWS:
            found[flow.name] = (flow.failovers[0].failover_ms if flow.failovers else None, flow.connections_broken == 0)
    return found


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5, help="runs per case (20 or more for a p95 worth reading)")
    ap.add_argument("--cases", default=";".join(CASES), help="';'-separated subset of: " + "; ".join(CASES))
    ap.add_argument("--name", default="shimvsmp", help="lab name (unique per user of the machine)")
    ap.add_argument("-o", "--output", default="reports/shim-vs-mptcp", help="where results.json goes")
    args = ap.parse_args()
    results: dict[str, dict] = {}
    print(f"{'case':<24} {'mechanism':<9} {'runs':>4} {'kept':>5} {'median ms':>10} {'p95 ms':>8} {'max ms':>8}",
          flush=True)
    for case in args.cases.split(";"):
        scenario, profile = CASES[case]
        gaps: dict[str, list[float]] = {f: [] for f in FLOWS}
        kept = dict.fromkeys(FLOWS, 0)
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(args.repeat):
                run = one_run(scenario, profile, Path(tmp) / str(i), args.name, case in STRETCHED)
                line = []
                for flow in FLOWS:
                    gap, ok = run.get(flow, (None, False))
                    kept[flow] += ok
                    if gap is not None:
                        gaps[flow].append(gap)
                    line.append(f"{flow} {'%.0f ms' % gap if gap is not None else 'never recovered'}")
                print(f"  {case} run {i + 1}: {', '.join(line)}", file=sys.stderr, flush=True)
        for flow in FLOWS:
            results[f"{case}: {flow}"] = {"runs": args.repeat, "kept": kept[flow], "failover_ms": gaps[flow]}
            g = gaps[flow]
            figures = (f"{statistics.median(g):>10.0f} {pct(g, .95):>8.0f} {max(g):>8.0f}" if g else f"{'never':>10}")
            print(f"{case:<24} {flow:<9} {args.repeat:>4} {kept[flow]:>5} {figures}  load {os.getloadavg()[0]:.1f}",
                  flush=True)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
