"""Continuity for clients that keep their end-to-end sessions: the balancer's handover on real i2pd.

Stock SAM clients (no spare session, no renewal) send a request every 500 ms to a Destination on 2
hosting routers under the ``primary`` policy, in a network of 7 routers (2 floodfills, 3 client routers);
``--probes 3`` runs a probe on each client router.  Once every probing client's session is older than
120 s (i2pd 2.45.1 replaces a session only after ``ECIESX25519_RESTART_TIMEOUT``), the router carrying
the requests is crashed; ``--observe`` seconds later it is restored, and once it is back as a standby the
next crash (of the new carrier) follows, ``--cycles`` times per lab.  ``handover`` labs run the backend's
handover (docs/i2p-proposal-140.md), ``plain`` labs the same balancer with ``--no-handover``;
``--notransit`` makes the hosting routers refuse transit tunnels (lab ``hosting_transit: false``), so no
client's own tunnel can die with a hosting router; ``--reannounce 0`` turns off the balancer's
re-announcements after a fault (on by default).  Recovery = seconds from the crash until every later
request of every probing client (within the observation) was answered; the requests lost between one
crash's observation and the next crash (a restored router's return) are counted too.

    sudo .venv/bin/python experiments/i2p_handover.py -o reports/i2p/handover-nt --labs handover --cycles 10 --probes 3 --notransit
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


def lab_model(name: str, kind: str, loglevel: str = "info", notransit: bool = False, transit: int = 0,
              hosting: int = 2, reannounce: float = 5.0) -> I2pLab:
    # 3 client routers: in a network of 4 routers, most tunnels of the client and of the survivor go
    # through the crashed router and die with it.  notransit: the hosting routers carry no other router's
    # tunnel, so a hosting router's crash cannot break a client's own tunnels
    return I2pLab(name=name, hosting=hosting, clients=3, floodfills=2, transit=transit, hosting_transit=not notransit,
                  seed=f"exp-{name}", loglevel=loglevel,
                  balancer=BalancerOptions(policy="primary", handover=kind == "handover", reannounce_s=reannounce))


def crash_result(logs: dict[str, Path], fault_at: float, observe_s: float) -> dict[str, Any]:
    """One crash as every probing client saw it: recovery = until every later request of every client
    was answered (None if one client was still failing at the end of the observation)."""
    per: dict[str, dict[str, Any]] = {}
    for client, log in logs.items():
        reqs = [r for r in read_requests(log) if r.sent < fault_at + observe_s - TIMEOUT_S]
        after = [r for r in reqs if r.sent >= fault_at]
        per[client] = {"recovery_s": recovery_time(reqs, fault_at), "answered": sum(r.ok for r in after),
                       "sent": len(after), "first_ok_s": next((round(r.sent - fault_at, 2) for r in after if r.ok), None)}
    recs = [c["recovery_s"] for c in per.values()]
    sent = sum(c["sent"] for c in per.values())
    return {"recovery_s": None if None in recs else max(recs, default=None),
            "answered_after_fault": round(sum(c["answered"] for c in per.values()) / sent, 3) if sent else None,
            "first_ok_s": per[next(iter(per))]["first_ok_s"], "clients": per}


def lost_between(logs: dict[str, Path], start: float, end: float) -> dict[str, int]:
    """Requests per client sent in [start, end) that were not answered: the time between two crashes'
    observations, which the recovery measure does not see (a restored router's return)."""
    return {c: sum(not r.ok for r in read_requests(log) if start <= r.sent < end) for c, log in logs.items()}


def worker(kind: str, index: int, cycles: int, observe_s: float, prefix: str, out: Path,
           loglevel: str = "info", probes: int = 1, notransit: bool = False, transit: int = 0,
           hosting: int = 2, reannounce: float = 5.0) -> None:
    name = f"{prefix}{kind[0]}{index}"
    m = lab_model(name, kind, loglevel, notransit, transit, hosting, reannounce)
    lab = Lab.deploy(m)
    runs: list[dict[str, Any]] = []
    try:
        clients = [n for n, role in m.routers() if role == "client"][:probes]
        logs = {c: lab.rundir.path / ("probe.jsonl" if c == "c1" else f"probe-{c}.jsonl") for c in clients}
        for c, log in logs.items():
            faults.start_probe(lab, m, log, client=c, every_ms=500, timeout_s=TIMEOUT_S)
        # each client's session counts from its first answer; a crash waits until the youngest is old enough
        session_since = {c: observe.wait_answered(log, 0, 10, 240) for c, log in logs.items()}
        for cycle in range(cycles):
            time.sleep(max(0.0, max(session_since.values()) + SESSION_MIN_AGE_S - time.time()))
            victim = observe.carrier(lab, m) or "r1"
            fault_at = time.time()
            if runs:  # since the previous crash's observation ended
                runs[-1]["lost_before_next"] = lost_between(logs, runs[-1]["fault_at"] + observe_s - TIMEOUT_S,
                                                            fault_at)
            record = faults.crash(lab, m, victim, "router")
            time.sleep(observe_s)
            faults.restore(lab, record)
            result = crash_result(logs, fault_at, observe_s)
            runs.append({"cycle": cycle, "victim": victim, "fault_at": fault_at, "observe_s": observe_s, **result})
            each = ", ".join(f"{c} {v['recovery_s']}" for c, v in result["clients"].items())
            print(f"{name} cycle {cycle}: {victim} crashed, recovery {result['recovery_s']} ({each})", flush=True)
            # each client's session now lives in the survivor: its age counts from its recovery
            for c, v in result["clients"].items():
                session_since[c] = fault_at + (v["recovery_s"] if v["recovery_s"] is not None else observe_s)
            deadline = time.time() + 90
            while time.time() < deadline and not observe.rejoined(lab, m, victim):
                time.sleep(1)
            out.write_text(json.dumps({"handover_kind": kind, "lab": name, "notransit": notransit, "hosting": hosting,
                                       "transit": transit, "probes": len(logs), "reannounce_s": reannounce,
                                       "runs": runs}))
    finally:
        keep_logs(lab, m, out.with_suffix(""))
        lab.destroy()


def keep_logs(lab: Lab, m: I2pLab, folder: Path) -> None:
    """Copy the routers' i2pd logs, the balancer's, backend's and frontends' output and the probes' logs
    next to the result (destroy removes the lab)."""
    folder.mkdir(parents=True, exist_ok=True)
    for node in [n for n, _ in m.routers()] + (["bal"] if m.mode == "balancer" else []):
        for name in ("i2pd.log", "balancer.out", "backend.out", "frontend.out"):
            src = lab.node(node).dir / name
            if src.exists():
                shutil.copy(src, folder / f"{node}-{name.replace('.', '-', name.count('.') - 1)}")
    for src in lab.rundir.path.glob("*.jsonl"):
        shutil.copy(src, folder / src.name)


CONFIGS = {"handover-transit": "handover,\nhosting routers carry transit",
           "handover-notransit": "handover, no transit,\nno re-announcements",
           "handover-reannounce": "handover, no transit,\nre-announcements", "plain": "no handover"}


def config_of(result: dict[str, Any]) -> str:
    """CONFIGS key, with ``@N`` for labs with other than 2 hosting routers."""
    base = "plain" if result["handover_kind"] != "handover" else \
        "handover-transit" if not result.get("notransit") else \
        "handover-reannounce" if result.get("reannounce_s") else "handover-notransit"
    return base if result.get("hosting", 2) == 2 else f"{base}@{result['hosting']}"


def label(config: str) -> str:
    base, _, n = config.partition("@")
    return CONFIGS[base] + (f", N = {n}" if n else "")


def p95(values: list[float]) -> float:
    """The 95th percentile (nearest rank: of 10 values, the largest)."""
    ordered = sorted(values)
    return ordered[max(0, -(-95 * len(ordered) // 100) - 1)]


def spread(values: list[float], spec: str = ".1f", tail: bool = True) -> str:
    """median / p95 [min-max] of what happened (without ``tail``: median [min-max]; ``-`` when nothing did)."""
    if not values:
        return "-"
    p = f" / {p95(values):{spec}}" if tail else ""
    return f"{statistics.median(values):{spec}}{p} [{min(values):{spec}}-{max(values):{spec}}]"


def report(results: list[dict[str, Any]], out: Path) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = ["Continuity with stock clients that keep their sessions (SAM DATAGRAM, primary policy, N = 2 hosting routers unless said): the "
             "carrying router crashes; recovery = until every later request of every probing client is answered",
             f"{'config':<42} {'crashes':>7} {'clients':>7} {'<=10 s':>6} {'recovery s median / p95 [range]':>32} "
             f"{'answered after, median [range]':>32}   lost between crashes   each crash's recovery (s; - = not "
             "within the observation)"]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10.5, 3.6), sharey=True, gridspec_kw={"width_ratios": [3, 1.2]})
    present = sorted({config_of(r) for r in results}, key=lambda c: (list(CONFIGS).index(c.partition("@")[0]), c))
    never = max([run.get("observe_s", 30.0) for r in results for run in r["runs"]] + [30.0]) + 3
    for i, config in enumerate(present):
        runs = [run for r in results if config_of(r) == config for run in r["runs"]]
        recs = [run["recovery_s"] for run in runs]
        done = [x for x in recs if x is not None]
        answered = [run["answered_after_fault"] for run in runs if run.get("answered_after_fault") is not None]
        probes = max(len(run.get("clients", {"c1": 0})) for run in runs)
        lost = [sum(run["lost_before_next"].values()) for run in runs if "lost_before_next" in run]
        lost_text = f"{sum(lost)} in {len(lost)}" if lost else "-"
        bx.scatter(lost, [i] * len(lost), s=40, alpha=0.6, color="C3")
        lines.append(f"{label(config).replace(chr(10), ' '):<42} {len(runs):>7} {probes:>7} {sum(x <= 10 for x in done):>6} "
                     f"{spread(done):>32} {spread(answered, '.2f', tail=False):>32}   {lost_text:>20}   "
                     + " ".join("-" if x is None else f"{x:.1f}" for x in recs))
        each = [c["recovery_s"] for run in runs for c in run.get("clients", {}).values()]
        ax.scatter([x if x is not None else never for x in each], [i + 0.12] * len(each), s=12, alpha=0.5,
                   color="grey", label="one client" if i == 0 else None)
        ax.scatter([x if x is not None else never for x in recs], [i - 0.12] * len(recs), s=50, alpha=0.6,
                   marker="o" if config != "plain" else "x", color="C0", label="every client (the crash)" if i == 0 else None)
    between = [sum(run["lost_before_next"].values()) for r in results for run in r["runs"] if "lost_before_next" in run]
    if between:
        lines.append(f"requests lost between crashes (after one crash's observation, before the next), all "
                     f"clients: {sum(between)} in {len(between)} intervals ({' '.join(map(str, between))})")
    lines.append("per lab, crash by crash: " + "; ".join(
        f"{r['lab']}: " + " ".join("-" if run["recovery_s"] is None else f"{run['recovery_s']:.1f}" for run in r["runs"])
        for r in sorted(results, key=lambda r: r["lab"])))
    ax.axvline(10, color="grey", ls=":", label="goal: 10 s")
    counts = {c: (sum(len(r["runs"]) for r in results if config_of(r) == c),
                  max(r.get("probes", 1) for r in results if config_of(r) == c)) for c in present}
    ax.set_yticks(range(len(present)), [f"{label(c)}\n{counts[c][0]} crashes, {counts[c][1]} client(s)"
                                        for c in present], fontsize=8)
    ax.axvspan(never - 2, never + 2, color="0.92", zorder=0)
    ax.text(never, len(present) - 0.45, "not\nrecovered", ha="center", va="top", fontsize=7)
    ax.set_ylim(-0.7, len(present) - 0.3)
    ax.set_xlim(0, never + 2)
    ax.set_xlabel(f"s from the crash until every later request is answered (not recovered: at {never:.0f})")
    runs = sum(len(r["runs"]) for r in results)
    ax.set_title(f"Stock clients keeping their sessions, carrying router crashed ({runs} crashes)", fontsize=10)
    ax.legend(fontsize=8, loc="center right", bbox_to_anchor=(0.9, 0.5))
    bx.set_xlabel("requests lost between two crashes\n(all clients, one dot per interval)", fontsize=8)
    bx.set_xlim(left=-15)
    bx.set_title("between crashes", fontsize=10)
    return save_report(fig, "\n".join(lines), out, "i2p_handover")


def main() -> int:
    p = experiment_parser(__doc__)
    p.add_argument("--labs", default="handover,handover,plain", help="one lab per entry: handover or plain")
    p.add_argument("--cycles", type=int, default=4, help="crashes per lab")
    p.add_argument("--observe", type=float, default=30.0, help="seconds observed after each crash")
    p.add_argument("--prefix", default="i2ho", help="lab names: PREFIX + h|p + index")
    p.add_argument("--loglevel", default="info", choices=("info", "debug"),
                   help="the routers' i2pd log level (debug shows each garlic session decision)")
    p.add_argument("--probes", type=int, default=1, choices=(1, 2, 3),
                   help="clients probing at once (c1, c2, c3); a crash counts as recovered when all are")
    p.add_argument("--notransit", action="store_true",
                   help="hosting routers accept no transit tunnels (i2pd --notransit; lab hosting_transit: false)")
    p.add_argument("--transit", type=int, default=0, help="plain transit routers added to each lab")
    p.add_argument("--hosting", type=int, default=2, help="hosting routers per lab (N; the primary policy "
                   "publishes one router's leases, the others are standbys)")
    p.add_argument("--reannounce", type=float, default=5.0, metavar="S",
                   help="the balancer's re-announcements after a fault, every S seconds (lab balancer.reannounce_s; "
                        "0: off, as before the fix of docs/i2p-proposal-140.md 2b)")
    p.add_argument("--worker", nargs=2, metavar=("KIND", "INDEX"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args.worker[0], int(args.worker[1]), args.cycles, args.observe, args.prefix, args.out,
               args.loglevel, args.probes, args.notransit, args.transit, args.hosting, args.reannounce)
        return 0
    args.output.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        results = saved_results(args.output, "handover_kind")
    else:
        jobs = [[kind, str(i)] for i, kind in enumerate(args.labs.split(","))]
        results = run_workers("i2p_handover", jobs, args.output,
                              ["--cycles", str(args.cycles), "--observe", str(args.observe), "--prefix", args.prefix,
                               "--loglevel", args.loglevel, "--probes", str(args.probes),
                               "--transit", str(args.transit), "--hosting", str(args.hosting),
                               "--reannounce", str(args.reannounce)] + (["--notransit"] if args.notransit else []))
    print(report(results, args.output))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
