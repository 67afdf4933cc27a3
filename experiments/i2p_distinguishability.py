"""Can an observer tell a multihomed Destination's LeaseSet from one router's?  Independent runs per
policy and size, on real i2pd.

One lab per (kind, N): 2 floodfills, 3 client routers, N hosting routers with 3 inbound tunnels each
(1 hop) behind the balancer with policy ``gateway_aware`` (kind ``aware``: its target drawn from the
single-router law), ``fair_share`` (kind ``balancer``); kind ``single`` is one router with 3N tunnels
(at most 16) in a network of the same size (N - 1 extra routers).  A *run* is a fresh draw of every
pool: the balancer and every frontend are stopped and started again, so each router builds a new
I2CP session with new tunnels through peers it picks anew, and the balancer starts with no memory.  Once
every router offers its tunnels and its leases are published (bounded), the published LeaseSet and each
router's pool (with the leases' end dates) are read every 10 s for ``--window`` seconds.

The policies are pure functions of the pools (agents/balancer/policy.py), so every policy is also
*replayed* on the pools recorded in a balancer lab: the snapshots of a run are fed in order to a fresh
policy and its last choice is that run's LeaseSet.  One lab then measures ``fair_share``, the mean
target and the drawn target on the same pool draws; the live policy of the lab checks the replay.

i2pd's tunnels live 10 minutes; a window shorter than that sees each pool as first built (a LeaseSet
changes only when a tunnel is rebuilt), which is what the fresh draws are for: one LeaseSet per run is
an independent observation, the snapshots within a run are not.  ``--serial`` runs the labs one after
another (they are CPU-heavy).

    sudo .venv/bin/python experiments/i2p_distinguishability.py --sizes 2,8,10 --runs 10   # reports/i2p/distinguishability/
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agents.balancer.control import query_status  # noqa: E402
from agents.balancer.occupancy import estimate_peers, occupancy_mean  # noqa: E402
from agents.balancer.policy import GatewayAware, fair_share  # noqa: E402
from agents.balancer.structures import Lease2  # noqa: E402
from testbed.i2p import observe  # noqa: E402
from testbed.i2p.analysis import (chi2_homogeneity, observations_needed, permutation_p,  # noqa: E402
                                  sprt_floor, sprt_observations)
from testbed.i2p.bootstrap import current_record, destination_controls, respawn, stop_records  # noqa: E402
from testbed.i2p.netplan import BALANCER_NODE  # noqa: E402
from testbed.i2p.topology import BalancerOptions, I2pLab  # noqa: E402
from testbed.lab import Lab  # noqa: E402
from testbed.wait import WaitTimeout, wait_until  # noqa: E402

from experiments.i2p_runs import (POLICY_OF_MODE, experiment_parser, gateway_names, lease_snapshot,  # noqa: E402
                                  run_workers, save_report, saved_results)

KINDS = ("balancer", "aware", "single")
DEFAULT_KINDS = ("aware", "single")
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


def snapshot(lab: Any, m: I2pLab) -> dict[str, Any]:
    """:func:`lease_snapshot` plus every pool's leases with their end dates (``ends``: router ->
    [gateway hex, tunnel id, end s]), which the replayed policies need."""
    snap = lease_snapshot(lab, m)
    ends: dict[str, list[list[Any]]] = {}
    for path in destination_controls(lab, m).values():
        for router, state in query_status(path)["routers"].items():
            ends[router] = [[x["gateway"], x["tunnel_id"], x["end"]] for x in state["leases"]] if state["up"] else []
    snap["ends"] = ends
    return snap


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
            samples = [snapshot(lab, m)]
            while time.time() - samples[0]["t"] < window:
                time.sleep(SAMPLE_EVERY)
                samples.append(snapshot(lab, m))
            result["runs"].append({"run": run, "ready_s": ready_s, "full": pools_ready(lab, m, quantity),
                                   "samples": samples, "load": round(os.getloadavg()[0], 1)})
            out.write_text(json.dumps(result))
            print(f"{m.name} run {run}: ready after {ready_s} s", flush=True)
    finally:
        lab.destroy()


# -- analysis ------------------------------------------------------------------------------------


def distinct(leases: list[list[Any]]) -> int:
    return len({x[0] for x in leases})


FULL_SHARE = 0.75  # a run counts once the routers offer 3/4 of the tunnels a LeaseSet can hold


def complete(r: dict[str, Any], run: dict[str, Any]) -> bool:
    """At the window's end every hosting router offers tunnels and together they offer most of what the
    LeaseSet can hold, min(16, N x quantity) (i2pd builds a pool of 16 slowly: a single router's
    LeaseSet of 2 leases would be compared with multihomed ones of 16). The pools, not the LeaseSet:
    ``gateway_aware`` publishes fewer leases than it is offered."""
    pools = run["samples"][-1]["pools"]
    offered = sum(len(p) for p in pools.values())
    return (len(pools) == r["hosting"] and all(pools.values())
            and offered >= FULL_SHARE * min(16, r["hosting"] * r["quantity"]))


def leases_of(snap: dict[str, Any]) -> dict[str, list[Lease2]]:
    return {router: [Lease2(bytes.fromhex(g), t, e) for g, t, e in leases] for router, leases in snap["ends"].items()}


def replay(run: dict[str, Any], make: Any) -> list[list[Any]]:
    """The LeaseSet a fresh ``make()`` policy would have published at the run's end, fed the run's
    snapshots in order (the live balancer is fed each router's leases as they come; same pools)."""
    policy, chosen = make(), ()
    for snap in run["samples"]:
        chosen = policy(leases_of(snap), int(snap["t"]))
    return [[x.gateway.hex(), x.tunnel_id] for x in chosen]


def drawn(seed: int) -> Any:
    return lambda: GatewayAware(rng=random.Random(seed))


# what is published per run, by row: live (the lab's own balancer) or replayed on the lab's pools
REPLAYS = {"fair_share (replay)": lambda i: (lambda: fair_share),
           "gateway_aware mean target (replay)": lambda i: (lambda: GatewayAware(draw=False)),
           "gateway_aware drawn (replay)": drawn,
           "gateway_aware drawn, K estimated (replay)": lambda i: (lambda: GatewayAware(rng=random.Random(i), estimate=True))}
LIVE = {"balancer": "fair_share (live)", "aware": "gateway_aware drawn (live)", "single": "single router"}


def rows(results: list[dict[str, Any]]) -> dict[tuple[int, str], dict[str, Any]]:
    """(N, row label) -> per-run published LeaseSets and pools, live and replayed."""
    out: dict[tuple[int, str], dict[str, Any]] = {}
    for r in sorted(results, key=lambda r: KINDS.index(r["dist_kind"])):
        runs = [run for run in r["runs"] if complete(r, run)]
        live = [(run["samples"][-1]["published"].get(BALANCER_NODE, []), run["samples"][-1]["pools"]) for run in runs]
        out[(r["n"], LIVE[r["dist_kind"]])] = {"sets": live, "lab": r}
        if r["dist_kind"] == "single" or not all("ends" in run["samples"][-1] for run in runs):
            continue
        for label, make in REPLAYS.items():
            if (r["n"], label) not in out:  # the first balancer lab of this size (kinds in KINDS order)
                out[(r["n"], label)] = {"sets": [(replay(run, make(i)), run["samples"][-1]["pools"])
                                                 for i, run in enumerate(runs)], "lab": r}
    return out


def overlap(published: list[list[Any]], pools: dict[str, list[list[Any]]]) -> tuple[float, float, float]:
    """Mean overlap of each router's pool gateways G with the LeaseSet's L (not visible to an observer
    who sees only LeaseSets): Jaccard |G∩L|/|G∪L|, the share of the pool's gateways that are published
    |G∩L|/|G|, and the share of the LeaseSet's gateways that are the router's own |G∩L|/|L|. One router
    publishing its own pool has 1, 1, 1."""
    gws = {x[0] for x in published}
    sets = [p for p in ({x[0] for x in pool} for pool in pools.values()) if p]
    if not sets or not gws:
        return float("nan"), float("nan"), float("nan")
    return (statistics.fmean(len(p & gws) / len(p | gws) for p in sets),
            statistics.fmean(len(p & gws) / len(p) for p in sets),
            statistics.fmean(len(p & gws) / len(gws) for p in sets))


def peer_estimates(pools: dict[str, list[list[Any]]]) -> dict[str, float]:
    """The mean target (distinct gateways one router would show with the LeaseSet's T tunnels) under each
    way of estimating the peers K a router picks from, from what the balancer sees: the pools' gateways."""
    gws = [x[0] for pool in pools.values() for x in pool]
    if not gws:
        return {}
    counts = Counter(gws)
    tunnels, seen = min(16, len(gws)), len(counts)
    singles, doubles = sum(v == 1 for v in counts.values()), sum(v == 2 for v in counts.values())
    chao1 = seen + (singles * singles / (2 * doubles) if doubles else singles * (singles - 1) / 2)
    per_router = [(len(p), len({x[0] for x in p})) for p in pools.values() if p]
    draws = statistics.fmean(t for t, _ in per_router)
    distinct_each = statistics.fmean(d for _, d in per_router)
    # K from the repeats within one router's own pool (i2pd's picks as one router makes them): the K at which
    # `draws` uniform picks show `distinct_each` gateways on average (bisection), at most the K seen
    lo, hi = 1.0, float(seen)
    for _ in range(60 if distinct_each < draws else 0):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if occupancy_mean(round(draws), mid) < distinct_each else (lo, mid)  # type: ignore[arg-type]
    k_own = hi
    return {"K seen (default)": occupancy_mean(tunnels, seen),
            "K moment estimate": occupancy_mean(tunnels, estimate_peers(len(gws), seen)),
            "K Chao1": occupancy_mean(tunnels, max(1, round(chao1))),
            "K from one router's repeats": occupancy_mean(tunnels, max(1, round(k_own)))}


def spread(xs: list[int]) -> str:
    if not xs:
        return "-"
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.fmean(xs):.2f} ± {sd:.2f} [{min(xs)}-{max(xs)}]"


def report(results: list[dict[str, Any]], out: Path) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = rows(results)
    sizes = sorted({n for n, _ in table})
    order = ["single router", *(v for v in LIVE.values() if v != "single router"), *REPLAYS]
    lines = ["Distinct inbound gateways per published LeaseSet: one LeaseSet per independent run (fresh pools each), "
             "2 floodfills, 3 clients, 3 tunnels per hosting router (1 hop); runs whose pools held fewer than "
             f"{FULL_SHARE:.0%} of their tunnels at the window's end are left out. Tests against the single router "
             "of the same N: chi-square homogeneity (df, p), its permutation p, LeaseSets an observer needs: "
             "chi-square power 0.8 at 5 % (pow) and Wald's SPRT at 5 %/5 % (sprt); floor: the median sprt figure "
             "two samples of 10 drawn from the single router's own histogram give by chance.",
             f"{'N':>3} {'row':<44} {'runs':>4} {'leases':>6} {'gateways / LeaseSet (mean ± sd [range])':<30} "
             f"{'pool∩LS':>7} {'G∩L/G':>6} {'G∩L/L':>6} {'chi2 (df, p)':>20} {'perm p':>7} {'pow':>6} {'sprt':>6}   per-run counts"]
    for n in sizes:
        ref_row = table.get((n, "single router"))
        ref = Counter(distinct(ls) for ls, _ in ref_row["sets"]) if ref_row else None
        for label in order:
            row = table.get((n, label))
            if row is None or not row["sets"]:
                continue
            obs = [distinct(ls) for ls, _ in row["sets"]]
            c = Counter(obs)
            test = perm = pw = sp = ""
            if label != "single router" and ref:
                t = chi2_homogeneity(c, ref)
                test = f"{t.statistic:.1f} ({t.df}, {t.p_value:.2g})"
                perm = f"{permutation_p(c, ref):.2g}"
                pw = f"{observations_needed(c, ref):.0f}"
                sp = f"{sprt_observations(c, ref):.0f}"
            lines.append(f"{n:>3} {label:<44} {len(obs):>4} {statistics.fmean(len(ls) for ls, _ in row['sets']):>6.1f} "
                         f"{spread(obs):<30} "
                         + " ".join(f"{statistics.fmean(v):>{w}.2f}" for v, w in
                                    zip(zip(*(overlap(ls, p) for ls, p in row["sets"])), (7, 6, 6)))
                         + f" {test:>20} {perm:>7} {pw:>6} {sp:>6}   {dict(sorted(c.items()))}")
        if ref:
            lines.append(f"{n:>3}   floor: sprt {sprt_floor(ref, 10):.0f} for two samples drawn from the single "
                         "router's own histogram (the same law)")
    lines += ["", "The mean target under other estimates of the peers K (one per run from the multihomed lab's pools "
              "at the window's end, mean over runs) against the single router's mean distinct gateways:"]
    for r in results:
        if r["dist_kind"] == "single":
            continue
        runs = [run for run in r["runs"] if complete(r, run)]
        ests = [peer_estimates(run["samples"][-1]["pools"]) for run in runs]
        ref_row = table.get((r["n"], "single router"))
        ref = statistics.fmean(distinct(ls) for ls, _ in ref_row["sets"]) if ref_row and ref_row["sets"] else float("nan")
        if ests and ests[0]:
            lines.append(f"{r['n']:>3} single router {ref:.2f}; " + "; ".join(
                f"{k} {statistics.fmean(e[k] for e in ests if e):.2f}" for k in ests[0]))
    lines += ["", "Labs: " + "; ".join(
        f"{r['dist_kind']} N={r['n']}: {len(r['runs'])} runs, {sum(complete(r, x) for x in r['runs'])} complete, "
        f"ready {statistics.median(x['ready_s'] for x in r['runs']):.0f} s (median), window {r['window_s']:.0f} s, "
        f"load {statistics.median(x.get('load', float('nan')) for x in r['runs'])}" for r in results)]
    text = "\n".join(lines)
    shown = ["single router", "fair_share (replay)", "gateway_aware mean target (replay)", "gateway_aware drawn (live)",
             "gateway_aware drawn (replay)"]
    fig, axes = plt.subplots(1, len(sizes), figsize=(4.6 * len(sizes), 3.8), squeeze=False)
    for ax, n in zip(axes[0], sizes):
        present = [label for label in shown if table.get((n, label), {}).get("sets")]
        width = 0.8 / max(1, len(present))
        seen: list[int] = []
        for i, label in enumerate(present):
            obs = [distinct(ls) for ls, _ in table[(n, label)]["sets"]]
            seen += obs
            c = Counter(obs)
            ax.bar([x + (i - (len(present) - 1) / 2) * width for x in sorted(c)], [c[x] / len(obs) for x in sorted(c)],
                   width, label=f"{label} ({len(obs)})")
        if seen:
            ax.set_xticks(range(min(seen), max(seen) + 1))
        ax.set_title(f"N = {n}", fontsize=10)
        ax.set_xlabel("distinct gateways in the LeaseSet")
        ax.set_ylabel("share of runs")
        ax.set_ylim(0, 1.45)
        ax.legend(fontsize=6.5, loc="upper left")
    fig.suptitle("Gateways per published LeaseSet, one LeaseSet per independent run", fontsize=11)
    return save_report(fig, text, out, "i2p_distinguishability")


def main() -> int:
    p = experiment_parser(__doc__)
    p.set_defaults(output=Path("reports/i2p/distinguishability"))
    p.add_argument("--sizes", default="2,8,10", help="comma list of N (hosting routers)")
    p.add_argument("--kinds", default=",".join(DEFAULT_KINDS), help="comma list of aware (gateway_aware, drawn "
                   "target), balancer (fair_share), single; fair_share and the mean target are also replayed on "
                   "the pools of the first balancer lab of each size")
    p.add_argument("--runs", type=int, default=10, help="fresh draws of every pool per lab")
    p.add_argument("--window", type=float, default=60.0, help="seconds observed per run")
    p.add_argument("--prefix", default="i2d", help="lab names: PREFIX + kind initial + N")
    p.add_argument("--serial", action="store_true", help="one lab at a time (default: all at once)")
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
        extra = ["--runs", str(args.runs), "--window", str(args.window), "--prefix", args.prefix]
        batches = [[job] for job in jobs] if args.serial else [jobs]
        results = [r for batch in batches for r in run_workers("i2p_distinguishability", batch, args.output, extra,
                                                                stagger=10.0)]
    print(report(results, args.output))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
