"""Proposal 140's claims 1 and 3 on real i2pd: publication load at the floodfill, and how the published
inbound gateways of a multihomed Destination differ from a single router's.

Runs (in parallel, one lab each, started ``--stagger`` seconds apart): naive and balancer for N = 2, 4,
8, 10 hosting routers (3 inbound tunnels each), and single-router Destinations with the same number of
tunnels (3N, at most 16), hosted the way a standard I2CP client hosts one (a fresh LeaseSet for every
request the router makes).  Each lab is measured for ``--windows`` consecutive windows of ``--window``
seconds, starting ``--settle`` seconds after its Destination is ready: LeaseSet stores counted at the
floodfill (see experiments/i2p_runs.py), and a snapshot of the published LeaseSet and each router's pool
every 10 s.  i2pd's tunnels live 10 minutes and cannot be shortened, so the default window is the full
600 s (no time scaling); a shorter window is scaled to 10 min linearly.  Bring-up is the CPU-heavy part;
once up, a lab's routers are nearly idle, which is why the labs can measure side by side.

    sudo .venv/bin/python experiments/i2p_publication_load.py -o reports/i2p --windows 5 --stagger 30
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from testbed.i2p.analysis import chi2_homogeneity, observations_needed  # noqa: E402
from testbed.lab import Lab  # noqa: E402

from experiments.i2p_runs import (StoreCounter, experiment_parser, gateway_names, lease_snapshot,  # noqa: E402
                                  model, run_workers, save_report, saved_results)

SIZES = (2, 4, 8, 10)
QUANTITY = 3
SAMPLE_EVERY = 10.0


def worker(kind: str, n: int, window: float, settle: float, out: Path, prefix: str = "pl",
           gateways: int | None = None, windows: int = 1) -> None:
    # single: one router hosting a Destination of the same size (3N tunnels, at most 16) as a standard
    # I2CP client does (a fresh LeaseSet for every request: mode naive with one router), in a network
    # of the same size (N - 1 extra routers)
    mode = {"single": "naive"}.get(kind, kind if kind in ("naive", "aware") else "balancer")
    hosting, quantity, extra = (1, min(16, QUANTITY * n), n - 1) if kind == "single" else (n, QUANTITY, 0)
    m = model(f"{prefix}{kind[0]}{n}", mode, hosting, quantity, clients=extra,
              gateways=gateways if kind == "aware" else None)
    lab = Lab.deploy(m)
    try:
        ready = time.time()
        counter = StoreCounter(lab, m)
        time.sleep(settle)
        counter.start()
        start = time.time()
        first = lease_snapshot(lab, m)
        samples, timeline, per_window, load = [first], [(0.0, 0)], [], []
        names = gateway_names(lab, m)
        for w in range(windows):
            end = start + (w + 1) * window
            while time.time() < end:
                time.sleep(max(0.0, min(SAMPLE_EVERY, end - time.time())))
                samples.append(lease_snapshot(lab, m))
                timeline.append((round(time.time() - start, 1), counter.count()))
            per_window.append(counter.count() - sum(per_window))
            load.append(round(os.getloadavg()[1], 1))
            # written after every window: a run cut short keeps the windows it finished
            out.write_text(json.dumps({
                "kind": kind if gateways is None or kind != "aware" else f"aware{gateways}", "n": n,
                "hosting": hosting, "quantity": quantity, "window_s": window * len(per_window),
                "windows": per_window, "each_window_s": window, "ready_after_s": round(ready - start + settle, 1),
                "stores": counter.count(), "updates": counter.updates(),
                "signed": samples[-1]["publications"] - first["publications"], "timeline": timeline,
                "gateways": names, "samples": samples, "load": load}))
    finally:
        lab.destroy()


# -- analysis ------------------------------------------------------------------------------------


def per_10min(r: dict[str, Any]) -> float:
    return r["stores"] * 600.0 / r["window_s"]


def window_rates(r: dict[str, Any]) -> list[float]:
    """Stores per 10 minutes in each consecutive window (one window for runs without ``windows``)."""
    each = r.get("each_window_s", r["window_s"])
    return [c * 600.0 / each for c in r.get("windows", [r["stores"]])]


def rate_cell(r: dict[str, Any]) -> str:
    xs = window_rates(r)
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.fmean(xs):.1f} ± {sd:.1f} [{min(xs):.0f}-{max(xs):.0f}]"


def gateway_stats(r: dict[str, Any], window_s: float = 120.0) -> dict[str, float]:
    """Per published LeaseSet (the balancer's one; each naive router's own): distinct gateways per
    snapshot and per window, overlap (Jaccard) of each contributing router's pool gateways with the
    LeaseSet's, and the share of its gateways that are hosting routers of the same Destination."""
    per_snapshot, overlaps, self_gw = [], [], []
    hosting = {h for h, name in r["gateways"].items() if name.startswith("r")}
    t0 = r["samples"][0]["t"]
    windows: dict[tuple[str, int], set[str]] = {}
    for s in r["samples"]:
        for source, leases in s["published"].items():
            gws = {gw for gw, _ in leases}
            if not gws:
                continue
            per_snapshot.append(len(gws))
            self_gw.append(len(gws & hosting) / len(gws))
            windows.setdefault((source, int((s["t"] - t0) // window_s)), set()).update(gws)
            contributors = s["pools"] if source not in s["pools"] else {source: s["pools"][source]}
            for pool in contributors.values():
                pool_gws = {gw for gw, _ in pool}
                if pool_gws:
                    overlaps.append(len(pool_gws & gws) / len(pool_gws | gws))
    mean = lambda xs: round(statistics.fmean(xs), 2) if xs else float("nan")  # noqa: E731
    covers = [min_cover(s["pools"]) for s in r["samples"] if len(s["pools"]) > 1]
    return {"distinct_per_leaseset": mean(per_snapshot), "distinct_per_window": mean([len(g) for g in windows.values()]),
            "pool_overlap_jaccard": mean(overlaps), "hosting_as_gateway": mean(self_gw),
            "gateway_aware": mean([c for c in covers if c])}


def distinct_counts(r: dict[str, Any]) -> Counter[int]:
    """Distinct gateways of each published LeaseSet snapshot."""
    return Counter(len({gw for gw, _ in leases}) for s in r["samples"] for leases in s["published"].values() if leases)


def against_single(results: list[dict[str, Any]]) -> list[str]:
    """Each multihomed run's distinct-gateway counts against the single router of the same N: chi-square
    homogeneity over the snapshots, and how many LeaseSets an observer needs (power 0.8, alpha 0.05).
    Snapshots 10 s apart of a LeaseSet that changes every few minutes are not independent: the
    p-values overstate, the observations-needed figure is the one to read."""
    by = {(r["kind"], r["n"]): r for r in results}
    lines = [f"{'run':<12} {'distinct gateways per LeaseSet (count: snapshots)':<50} {'chi2':>6} {'df':>2} "
             f"{'p':>9} {'LeaseSets needed':>16}"]
    for (kind, n), r in sorted(by.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        hist = distinct_counts(r)
        if kind == "single" or ("single", n) not in by:
            lines.append(f"{kind + ' N=' + str(n):<12} {dict(sorted(hist.items()))!s:<50}")
            continue
        ref = distinct_counts(by[("single", n)])
        t = chi2_homogeneity(hist, ref)
        lines.append(f"{kind + ' N=' + str(n):<12} {dict(sorted(hist.items()))!s:<50} {t.statistic:>6} {t.df:>2} "
                     f"{t.p_value:>9.2g} {observations_needed(hist, ref):>16.1f}")
    return lines


def min_cover(pools: dict[str, list[list[Any]]]) -> int | None:
    """What a gateway-aware balancer could publish: the fewest distinct gateways whose leases still give
    every live router at least one lease (exact set cover; pools are small)."""
    sets = [{gw for gw, _ in pool} for pool in pools.values() if pool]
    every = sorted(set().union(*sets)) if sets else []
    for k in range(1, len(every) + 1):
        if any(all(chosen & s for s in sets) for chosen in map(set, itertools.combinations(every, k))):
            return k
    return None


def report(results: list[dict[str, Any]], out: Path) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by = {(r["kind"], r["n"]): r for r in results}
    kinds = [k for k in ("naive", "balancer", "aware", "single") if any(r["kind"] == k for r in results)]
    lines = ["Publication load: LeaseSet stores received by the floodfill per 10 minutes, mean ± sd [range] over "
             "consecutive windows (count per window scaled to 10 min)",
             f"{'N':>3} " + " ".join(f"{k:>26}" for k in kinds) + f"   windows  naive arithmetic N x {QUANTITY}"]
    for n in SIZES:
        if not any((k, n) in by for k in kinds):
            continue
        cells = [rate_cell(by[(k, n)]) if (k, n) in by else "-" for k in kinds]
        shape = {f"{len(r.get('windows', [1]))} x {r.get('each_window_s', r['window_s']):.0f} s"
                 for k in kinds if (r := by.get((k, n)))}
        lines.append(f"{n:>3} " + " ".join(f"{c:>26}" for c in cells) + f"   {', '.join(sorted(shape))}  ({n * QUANTITY})")
    lines += ["", "Signed LeaseSets (balancer / single) and stores that replaced the floodfill's copy (updated):",
              *[f"{r['kind'] + ' N=' + str(r['n']):<12} signed {r['signed']:>4}  stores {r['stores']:>4}  updated "
                f"{r['updates']:>4}  per window {r.get('windows')}  load {r.get('load')}"
                for r in sorted(results, key=lambda r: (r["n"], r["kind"]))]]
    lines += ["", "Distinguishability of inbound gateways (published LeaseSet; 120 s windows)",
              f"{'run':<12} {'tunnels':>7} {'gw/LS':>6} {'gw/window':>9} {'pool∩LS':>8} {'hosting-as-gw':>13} "
              f"{'gw-aware':>8}"]
    for r in sorted(results, key=lambda r: (r["n"], r["kind"])):
        g = gateway_stats(r)
        lines.append(f"{r['kind'] + ' N=' + str(r['n']):<12} {r['hosting'] * r['quantity']:>7} "
                     f"{g['distinct_per_leaseset']:>6} {g['distinct_per_window']:>9} "
                     f"{g['pool_overlap_jaccard']:>8} {g['hosting_as_gateway']:>13} "
                     f"{g['gateway_aware'] if r['kind'] == 'balancer' else '-':>8}")
    lines += ["", "Against the single router of the same N (naive: kind 'naive' is one router's own LeaseSet)",
              *against_single(results)]
    text = "\n".join(lines)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.2
    shown = [k for k in ("naive", "balancer", "aware", "single") if any(r["kind"] == k for r in results)]
    width = 0.8 / max(1, len(shown))
    for i, kind in enumerate(shown):
        here = [(j, by[(kind, n)]) for j, n in enumerate(SIZES) if (kind, n) in by]
        rates = [window_rates(r) for _, r in here]
        means = [statistics.fmean(x) for x in rates]
        xs = [j + (i - (len(shown) - 1) / 2) * width for j, _ in here]
        ax1.bar(xs, means, width, yerr=[statistics.stdev(x) if len(x) > 1 else 0.0 for x in rates], capsize=3,
                label={"single": "single router (3N tunnels)"}.get(kind, kind))
        for x, mean in zip(xs, means):
            ax1.annotate(f"{mean:.0f}", (x, mean), textcoords="offset points", xytext=(0, 2), ha="center", fontsize=7)
    ax1.set_xticks(range(len(SIZES)), [f"N={n}" for n in SIZES])
    ax1.set_ylabel("LeaseSet stores at the floodfill / 10 min\n(mean ± sd over windows)")
    ax1.set_title("Publication load")
    ax1.legend()
    for kind, style in (("balancer", "o-"), ("aware", "D-"), ("naive", "s--"), ("single", "^:")):
        pts = [(n, gateway_stats(by[(kind, n)])["distinct_per_window"]) for n in SIZES if (kind, n) in by]
        if pts:
            label = {"naive": "naive (one router's LeaseSet)", "aware": "balancer, gateway_aware policy"}.get(kind, kind)
            ax2.plot(*zip(*pts), style, label=label)
    aware = [(n, gateway_stats(by[("balancer", n)])["gateway_aware"]) for n in SIZES if ("balancer", n) in by]
    if aware:
        ax2.plot(*zip(*aware), "o:", color="grey", label="balancer, gateway-aware selection (offline)")
    ax2.set_xticks(SIZES)
    ax2.set_xlabel("N (network of N + 1 routers; single: 1 host + N - 1 others)")
    ax2.set_ylabel("distinct gateways published / 120 s")
    ax2.set_title("Gateway diversity")
    ax2.legend(fontsize=8)
    return save_report(fig, text, out, "i2p_publication_load")


def histogram_plot(results: list[dict[str, Any]], out: Path) -> None:
    """Distinct gateways per published LeaseSet, one panel per N, one bar group per run kind."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({r["n"] for r in results})
    fig, axes = plt.subplots(1, len(sizes), figsize=(5.5 * len(sizes), 3.8), squeeze=False)
    for ax, n in zip(axes[0], sizes):
        runs = sorted((r for r in results if r["n"] == n), key=lambda r: r["kind"])
        counts = [distinct_counts(r) for r in runs]
        cats = sorted(set().union(*counts))
        width = 0.8 / max(1, len(runs))
        for i, (r, c) in enumerate(zip(runs, counts)):
            total = sum(c.values())
            ax.bar([x + (i - (len(runs) - 1) / 2) * width for x in cats], [c[x] / total for x in cats], width,
                   label=f"{r['kind']} ({total} snapshots)")
        ax.set_xticks(cats)
        ax.set_xlabel(f"distinct inbound gateways in the published LeaseSet (N = {n})")
        ax.set_ylabel("share of snapshots")
        ax.set_ylim(0, 1.4)
        ax.legend(fontsize=8, ncol=2, loc="upper center")
        ax.set_title("Gateways per LeaseSet: policies vs one router", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "i2p_gateway_histogram.png", dpi=120)


def main() -> int:
    p = experiment_parser(__doc__)
    p.add_argument("--window", type=float, default=600.0, help="measured seconds per lab (default 600)")
    p.add_argument("--settle", type=float, default=30.0, help="seconds after the Destination is ready")
    p.add_argument("--kinds", default="naive,balancer,single", help="comma list of naive, balancer, aware "
                   "(balancer with the gateway_aware policy), single")
    p.add_argument("--sizes", default=",".join(map(str, SIZES)))
    p.add_argument("--prefix", default="pl", help="lab names are PREFIX + kind initial + N (default pl)")
    p.add_argument("--gateways", type=int, help="aware: the policy's target of distinct gateways "
                   "(default: what one router with as many tunnels shows)")
    p.add_argument("--windows", type=int, default=1, help="consecutive windows of --window seconds per lab "
                   "(mean and spread over them)")
    p.add_argument("--stagger", type=float, default=5.0, help="seconds between two labs' starts (bring-up "
                   "is the CPU-heavy part; the measuring phase is nearly idle)")
    p.add_argument("--worker", nargs=2, metavar=("KIND", "N"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args.worker[0], int(args.worker[1]), args.window, args.settle, args.out, args.prefix, args.gateways,
               args.windows)
        return 0
    args.output.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        results = saved_results(args.output, "kind")
    else:
        jobs = [[k, n] for k in args.kinds.split(",") for n in args.sizes.split(",")]
        results = run_workers("i2p_publication_load", jobs, args.output,
                              ["--window", str(args.window), "--settle", str(args.settle), "--windows", str(args.windows),
                               "--prefix", args.prefix, *(["--gateways", str(args.gateways)] if args.gateways else [])],
                              stagger=args.stagger)
    print(report(results, args.output))
    histogram_plot(results, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
