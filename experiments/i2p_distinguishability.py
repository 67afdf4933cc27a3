"""Can an observer tell a multihomed Destination's LeaseSet from one router's?  Independent runs per
policy and size, on real i2pd.

One lab per (kind, N), all labs at once: 2 floodfills, 3 client routers, N hosting routers with 3 inbound
tunnels each (1 hop) behind the balancer with policy ``fair_share`` (kind ``balancer``) or
``gateway_aware`` with its default target (kind ``aware``); kind ``single`` is one router with 3N tunnels
(at most 16) in a network of the same size (N - 1 extra routers).  A *run* is a fresh draw of every
pool: the balancer and every frontend are stopped and started again, so each router builds a new
I2CP session with new tunnels through peers it picks anew, and the balancer starts with no memory.  Once
every router offers its tunnels and its leases are published (bounded), the published LeaseSet and each
router's pool are read every 10 s for ``--window`` seconds.

i2pd's tunnels live 10 minutes; a window shorter than that sees each pool as first built (a LeaseSet
changes only when a tunnel is rebuilt), which is what the fresh draws are for: one LeaseSet per run is
an independent observation, the snapshots within a run are not.

    sudo .venv/bin/python experiments/i2p_distinguishability.py --sizes 2,8,10 --runs 10   # reports/i2p/distinguishability/
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from testbed.i2p import observe  # noqa: E402
from testbed.i2p.analysis import chi2_homogeneity, observations_needed  # noqa: E402
from testbed.i2p.bootstrap import current_record, respawn, stop_records  # noqa: E402
from testbed.i2p.netplan import BALANCER_NODE  # noqa: E402
from testbed.i2p.topology import BalancerOptions, I2pLab  # noqa: E402
from testbed.lab import Lab  # noqa: E402
from testbed.wait import WaitTimeout, wait_until  # noqa: E402

from experiments.i2p_publication_load import gateway_stats  # noqa: E402
from experiments.i2p_runs import (POLICY_OF_MODE, experiment_parser, gateway_names, lease_snapshot,  # noqa: E402
                                  run_workers, save_report, saved_results)

KINDS = ("balancer", "aware", "single")
QUANTITY = 3
CLIENTS = 3
SAMPLE_EVERY = 10.0
READY_TIMEOUT = 120.0


def lab_model(kind: str, n: int, prefix: str) -> I2pLab:
    hosting, quantity, extra = (1, min(16, QUANTITY * n), n - 1) if kind == "single" else (n, QUANTITY, 0)
    name = f"{prefix}{kind[0]}{n}"
    return I2pLab(name=name, hosting=hosting, clients=CLIENTS + extra, floodfills=2, seed=f"exp-{name}",
                  balancer=BalancerOptions(inbound_quantity=quantity, policy=POLICY_OF_MODE.get(kind, "fair_share")))


def fresh_draw(lab: Any, m: I2pLab) -> None:
    """Stop the balancer and every frontend, start them again: new sessions, new pools, no memory."""
    hosting = [r for r, role in m.routers() if role == "hosting"]
    fronts = [current_record(lab, r, "frontend") for r in hosting]
    balancer = current_record(lab, BALANCER_NODE, "balancer")
    stop_records([*fronts, balancer], grace=2.0)
    respawn(lab, balancer)
    wait_until(lambda: (lab.node(BALANCER_NODE).dir / "control.sock").exists(), 20, 0.2, what="balancer control socket")
    for rec in fronts:
        respawn(lab, rec)


def pools_ready(lab: Any, m: I2pLab, quantity: int) -> bool:
    """Every router offers all its tunnels and each has a lease in the published LeaseSet."""
    snap = lease_snapshot(lab, m)
    hosting = {r for r, role in m.routers() if role == "hosting"}
    full = all(len(snap["pools"].get(r, [])) >= quantity for r in hosting)
    return full and observe.published_routers(lab, m) == hosting


def worker(kind: str, n: int, runs: int, window: float, prefix: str, out: Path) -> None:
    m = lab_model(kind, n, prefix)
    quantity = m.balancer.inbound_quantity
    lab = Lab.deploy(m)
    result: dict[str, Any] = {"dist_kind": kind, "n": n, "hosting": m.hosting, "quantity": quantity,
                              "window_s": window, "runs": []}
    try:
        result["gateways"] = gateway_names(lab, m)
        for run in range(runs):
            if run:
                fresh_draw(lab, m)
            start = time.time()
            try:
                wait_until(lambda: pools_ready(lab, m, quantity), READY_TIMEOUT, 1.0, what="every pool full and published",
                           ignore=(OSError, ValueError, KeyError))
            except WaitTimeout:
                pass  # a run whose pools did not fill is kept and marked: what was published is still a LeaseSet
            ready_s = round(time.time() - start, 1)
            samples = [lease_snapshot(lab, m)]
            while time.time() - samples[0]["t"] < window:
                time.sleep(SAMPLE_EVERY)
                samples.append(lease_snapshot(lab, m))
            result["runs"].append({"run": run, "ready_s": ready_s, "full": pools_ready(lab, m, quantity),
                                   "samples": samples})
            out.write_text(json.dumps(result))
            print(f"{m.name} run {run}: ready after {ready_s} s", flush=True)
    finally:
        lab.destroy()


# -- analysis ------------------------------------------------------------------------------------


def distinct(leases: list[list[Any]]) -> int:
    return len({gw for gw, _ in leases})


FULL_SHARE = 0.75  # a run counts once its LeaseSet holds 3/4 of the tunnels it is meant to have


def complete(r: dict[str, Any], run: dict[str, Any]) -> bool:
    """The LeaseSet at the window's end holds most of its tunnels (i2pd builds a pool of 16 slowly:
    a single router's LeaseSet of 2 leases would be compared with multihomed ones of 16)."""
    target = min(16, r["hosting"] * r["quantity"])
    return len(run["samples"][-1]["published"].get(BALANCER_NODE, [])) >= FULL_SHARE * target


def per_run(r: dict[str, Any]) -> list[int]:
    """One independent observation per run: the distinct gateways of the LeaseSet at the window's end
    (runs whose pools were still being built are left out: :func:`complete`)."""
    return [distinct(run["samples"][-1]["published"][BALANCER_NODE]) for run in r["runs"] if complete(r, run)]


def per_snapshot(r: dict[str, Any]) -> list[int]:
    return [distinct(s["published"].get(BALANCER_NODE, [])) for run in r["runs"] for s in run["samples"]
            if s["published"].get(BALANCER_NODE)]


def leases_published(r: dict[str, Any]) -> list[int]:
    return [len(run["samples"][-1]["published"][BALANCER_NODE]) for run in r["runs"] if complete(r, run)]


def as_samples(r: dict[str, Any]) -> dict[str, Any]:
    """The shape experiments.i2p_publication_load.gateway_stats reads (every run's snapshots)."""
    return {"gateways": r["gateways"], "samples": [s for run in r["runs"] for s in run["samples"]]}


def spread(xs: list[int]) -> str:
    if not xs:
        return "-"
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.fmean(xs):.2f} ± {sd:.2f} [{min(xs)}-{max(xs)}]"


def report(results: list[dict[str, Any]], out: Path) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by = {(r["dist_kind"], r["n"]): r for r in results}
    sizes = sorted({r["n"] for r in results})
    lines = ["Distinct inbound gateways per published LeaseSet: independent runs (fresh pools each), "
             "2 floodfills, 3 clients, 3 tunnels per hosting router (1 hop); runs whose LeaseSet held fewer "
             f"than {FULL_SHARE:.0%} of its tunnels at the window's end are left out (runs = those kept)",
             f"{'run':<12} {'runs':>4} {'leases':>6} {'gateways / LeaseSet, one per run (mean ± sd [range])':<40} "
             f"{'pool∩LS':>7} {'chi2 vs single':>15} {'p':>8} {'LS needed':>9}   per-run counts"]
    for n in sizes:
        ref = Counter(per_run(by[("single", n)])) if ("single", n) in by else None
        for kind in KINDS:
            r = by.get((kind, n))
            if r is None:
                continue
            obs = per_run(r)
            g = gateway_stats(as_samples(r))
            test, needed = "", ""
            if kind != "single" and ref and obs:
                t = chi2_homogeneity(Counter(obs), ref)
                test = f"{t.statistic:>9} (df {t.df}) {t.p_value:>8.2g}"
                needed = f"{observations_needed(Counter(obs), ref):>9.1f}"
            lines.append(f"{kind + ' N=' + str(n):<12} {len(obs):>4} {statistics.fmean(leases_published(r)):>6.1f} "
                         f"{spread(obs):<40} {g['pool_overlap_jaccard']:>7} {test:<24} {needed:>9}   "
                         f"{dict(sorted(Counter(obs).items()))}")
    lines += ["", "Every snapshot (10 s apart; not independent within a run):",
              *[f"{k + ' N=' + str(n):<12} {dict(sorted(Counter(per_snapshot(by[(k, n)])).items()))}"
                for n in sizes for k in KINDS if (k, n) in by]]
    text = "\n".join(lines)
    fig, axes = plt.subplots(1, len(sizes), figsize=(4.2 * len(sizes), 3.6), squeeze=False)
    for ax, n in zip(axes[0], sizes):
        for i, kind in enumerate(KINDS):
            if (kind, n) not in by:
                continue
            obs = per_run(by[(kind, n)])
            c = Counter(obs)
            cats = sorted(c)
            ax.bar([x + (i - 1) * 0.27 for x in cats], [c[x] / len(obs) for x in cats], 0.27,
                   label=f"{'fair_share' if kind == 'balancer' else 'gateway_aware' if kind == 'aware' else 'single router'}"
                         f" ({len(obs)})")
        seen = [x for k in KINDS if (k, n) in by for x in per_run(by[(k, n)])]
        if seen:
            ax.set_xticks(range(min(seen), max(seen) + 1))
        ax.set_title(f"N = {n}", fontsize=10)
        ax.set_xlabel("distinct gateways in the LeaseSet")
        ax.set_ylabel("share of runs")
        ax.set_ylim(0, 1.25)
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle("Gateways per published LeaseSet, one LeaseSet per independent run", fontsize=11)
    return save_report(fig, text, out, "i2p_distinguishability")


def main() -> int:
    p = experiment_parser(__doc__)
    p.set_defaults(output=Path("reports/i2p/distinguishability"))
    p.add_argument("--sizes", default="2,8,10", help="comma list of N (hosting routers)")
    p.add_argument("--kinds", default=",".join(KINDS), help="comma list of balancer (fair_share), aware "
                   "(gateway_aware, default target), single")
    p.add_argument("--runs", type=int, default=10, help="fresh draws of every pool per lab")
    p.add_argument("--window", type=float, default=60.0, help="seconds observed per run")
    p.add_argument("--prefix", default="i2d", help="lab names: PREFIX + kind initial + N")
    p.add_argument("--worker", nargs=2, metavar=("KIND", "N"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args.worker[0], int(args.worker[1]), args.runs, args.window, args.prefix, args.out)
        return 0
    args.output.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        results = saved_results(args.output, "dist_kind")
    else:
        jobs = [[k, n] for n in args.sizes.split(",") for k in args.kinds.split(",")]
        results = run_workers("i2p_distinguishability", jobs, args.output,
                              ["--runs", str(args.runs), "--window", str(args.window), "--prefix", args.prefix],
                              stagger=10.0)
    print(report(results, args.output))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
