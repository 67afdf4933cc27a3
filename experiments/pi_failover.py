"""Baseline 3, measured: how long PI multihoming (pi-bgp) takes to fail over when ISP A fails.

The failover of IPv4-style multihoming is BGP reconvergence, so it depends on how the failure is noticed.
Runs three failures under an established TCP flow (and a 20 ms ping) from h1's PI address to srv:
- ``isp-down``: every link of ispa goes down (scenarios/baseline-pi-isp-down.yaml);
- ``access-down``: only the site's access link ispa-ra goes down (same scenario, other fault);
- ``silent``: ispa-ra drops every packet but stays up (scenarios/baseline-pi-silent.yaml) - only the
  hold timer or BFD can notice;
each with three timer settings of the PI lab (topologies/two-isp-site-pi.yaml): FRR's ``defaults``
(keepalive 60 s / hold 180 s), tuned ``timers`` (1 s / 3 s) and ``bfd`` (1 s / 3 s plus BFD 100 ms x 3).
The silent failure with default timers needs minutes (the scenario is stretched to outlast the hold timer
and TCP's retransmission back-off), which is why it runs here and not in the test suite.

Prints a table and writes ``pi_failover.json`` plus each run's report under ``--out``.  Run as root:
``sudo .venv/bin/python experiments/pi_failover.py [--variants defaults,timers,bfd] [--out reports/pi-failover]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from testbed.checks import routing_settled  # noqa: E402
from testbed.lab import Lab  # noqa: E402
from testbed.scenario.load import LoadedScenario, load_scenario  # noqa: E402
from testbed.scenario.model import LinkDown  # noqa: E402
from testbed.scenario.run import run_loaded  # noqa: E402
from testbed.topology import BgpTimers, Topology, load_topology  # noqa: E402

TOPO = Path(__file__).resolve().parent.parent / "topologies"
SCEN = TOPO.parent / "scenarios"
VARIANTS = {
    "defaults": BgpTimers(),
    "timers": BgpTimers(keepalive=1, hold=3),
    "bfd": BgpTimers(keepalive=1, hold=3, bfd=True),
}
TCP_RTO_MIN_S = 0.2  # Linux's minimum retransmission timeout (the lab's RTTs are far below it)


def tcp_retry_after(outage: float) -> float:
    """When TCP's first retransmission after ``outage`` seconds comes: the timeout doubles on every try, so
    the flow resumes up to about one outage-length after the route is back (0.2, 0.6, 1.4, 3.0 ... s)."""
    t, rto = 0.0, TCP_RTO_MIN_S
    while t < outage:
        t, rto = t + rto, rto * 2
    return t


def with_timers(topo: Topology, variant: str) -> Topology:
    return topo.variant(bgp=VARIANTS[variant], name=f"pf{variant}"[:10])


def failures(hold: int) -> dict[str, LoadedScenario]:
    """The three failures; a silent one lasts until the hold timer has expired and TCP has retried."""
    isp_down = load_scenario(SCEN / "baseline-pi-isp-down.yaml")
    silent = load_scenario(SCEN / "baseline-pi-silent.yaml")
    access = isp_down.scenario.model_copy(update={
        "name": "baseline-pi-access-down", "expect": [],
        "faults": [LinkDown(kind="link-down", name="accessdown", link="ispa-ra", at=3)]})
    out = {"isp-down": isp_down, "access-down": LoadedScenario(access, isp_down.doc, isp_down.base_dir),
           "silent": silent}
    for key, loaded in out.items():
        at = loaded.scenario.faults[0].at
        duration = loaded.scenario.duration
        if key == "silent":  # the hold timer (plus a second to reconverge), then TCP's next retry, plus slack
            duration = max(duration, at + 1.15 * tcp_retry_after(hold + 1.0) + 2.0)
        out[key] = LoadedScenario(loaded.scenario.model_copy(update={"duration": duration}), loaded.doc,
                                  loaded.base_dir)
    return out


def converged(lab: Lab, timeout: float = 300.0) -> float:
    """Seconds until every session is up (BFD too) and core reaches the PI prefix through both ISPs again."""
    pi = str(next(iter(lab.plan.pi_prefixes.values())))
    t0 = time.monotonic()
    while not routing_settled(lab, "core", pi, paths=2):
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"lab {lab.name} did not reconverge within {timeout:.0f} s")
        time.sleep(0.5)
    return time.monotonic() - t0


def row(variant: str, failure: str, result) -> dict:
    flows = {f.name: f for f in result.flows}
    est, rt, new = flows["est"], flows["rt"], flows["new"]
    after = new.attempt_windows[0] if new.attempt_windows else None
    return {
        "variant": variant, "failure": failure, "duration_s": result.duration,
        "est_failover_ms": est.failovers[0].failover_ms if est.failovers else None,
        "est_max_gap_ms": round(est.max_gap_ms, 1), "est_broken": est.connections_broken,
        "rt_failover_ms": rt.failovers[0].failover_ms if rt.failovers else None,
        "new_ok_after": f"{after.after_ok}/{after.after_total}" if after else None,
        "passed": result.passed if result.verdicts else None,
    }


def fmt_ms(value: float | None) -> str:
    return "never" if value is None else f"{value:.0f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default="defaults,timers,bfd")
    ap.add_argument("--failures", default="isp-down,access-down,silent")
    ap.add_argument("--out", type=Path, default=Path("reports/pi-failover"))
    args = ap.parse_args()
    base = load_topology(TOPO / "two-isp-site-pi.yaml")
    rows = []
    for variant in args.variants.split(","):
        scenarios = failures(VARIANTS[variant].hold)
        with Lab.deploy(with_timers(base, variant)) as lab:
            for failure in args.failures.split(","):
                converged(lab)
                print(f"{variant}: {failure} ({scenarios[failure].scenario.duration:g} s) ...", flush=True)
                outcome = run_loaded(scenarios[failure], args.out / f"{variant}-{failure}", lab=lab)
                rows.append(row(variant, failure, outcome.result))
                print(f"  TCP flow failover {fmt_ms(rows[-1]['est_failover_ms'])} ms, ping failover "
                      f"{fmt_ms(rows[-1]['rt_failover_ms'])} ms, broken {rows[-1]['est_broken']}", flush=True)
    print(f"\n{'timers':<9} {'failure':<12} {'TCP failover ms':>16} {'ping failover ms':>17} {'broken':>7} "
          f"{'new conn. after':>16}")
    for r in rows:
        print(f"{r['variant']:<9} {r['failure']:<12} {fmt_ms(r['est_failover_ms']):>16} "
              f"{fmt_ms(r['rt_failover_ms']):>17} {r['est_broken']:>7} {r['new_ok_after'] or '-':>16}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pi_failover.json").write_text(json.dumps({"runs": rows, "timers": {
        k: v.model_dump() for k, v in VARIANTS.items()}}, indent=2) + "\n")
    print(f"\nwrote {args.out / 'pi_failover.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
