"""Routing-table growth, PI versus PA (thesis ch. 2-3): routes in the transit core's BGP table for N sites.

For each N (default 1, 2, 5, 10, 20, 50) deploys a generated lab of N sites multihomed to two ISPs
(``testbed.generate.n_sites``), once with ``pi-bgp`` (IPv4-style: each site's PI /48 announced through
both ISPs) and once with PA addressing (``sadr-static``: each ISP announces only its aggregate), reads
the number of IPv6 prefixes and paths in ``core``'s BGP table (FRR JSON) once it holds every expected
prefix and has stopped changing, and pings from the last site to prove the routes carry traffic.

Prints a table, fits PI's growth to a line, and writes ``table_growth.json`` and ``table_growth.png``
(both series in one plot) to ``--out``.  Run as root:
``sudo .venv/bin/python experiments/table_growth.py [--sizes 1,2,5,10,20,50] [--out reports/table-growth]``.
A size that fails to deploy ends the run with what was measured so far (the machine's limit, reported).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from testbed.errors import MhlabError  # noqa: E402
from testbed.table_growth import Sample, measure  # noqa: E402

MECHANISMS = {"pi-bgp": "PI (pi-bgp)", "sadr-static": "PA (sadr-static)"}


def fit(samples: list[Sample]) -> tuple[float, float] | None:
    """Least-squares line routes = a + b*N (None with fewer than two sizes)."""
    if len({s.sites for s in samples}) < 2:
        return None
    xs, ys = [s.sites for s in samples], [s.routes for s in samples]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return my - b * mx, b


def table(samples: list[Sample]) -> str:
    lines = [f"{'N':>4}  {'mechanism':<18}{'routes':>7}{'paths':>7}{'deploy s':>10}{'settle s':>10}  ping",
             "-" * 66]
    lines += [f"{s.sites:>4}  {MECHANISMS[s.mechanism]:<18}{s.routes:>7}{s.paths:>7}{s.deploy_s:>10.1f}"
              f"{s.settle_s:>10.2f}  {'ok' if s.reachable else 'FAIL'}" for s in samples]
    return "\n".join(lines)


def plot(samples: list[Sample], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for mech, label in MECHANISMS.items():
        pts = sorted((s.sites, s.routes) for s in samples if s.mechanism == mech)
        if pts:
            ax.plot(*zip(*pts), marker="o", label=label)
    ax.set_xlabel("multihomed sites N")
    ax.set_ylabel("IPv6 prefixes in core's BGP table")
    ax.set_title("Default-free table growth: PI vs PA multihoming")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1,2,5,10,20,50", help="comma-separated numbers of sites")
    ap.add_argument("--out", type=Path, default=Path("reports/table-growth"))
    ap.add_argument("--raise-neigh-table", action="store_true",
                    help="let a lab raise the host's neighbour-table limits when it needs more than they hold "
                    "(50 sites do on a default host; journalled and restored when the lab is destroyed)")
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    samples: list[Sample] = []
    limit = None
    t0 = time.monotonic()
    for n in sizes:
        try:
            for mech in MECHANISMS:
                samples.append(measure(n, mech, raise_neigh_table=args.raise_neigh_table))
                s = samples[-1]
                print(f"N={n:<3} {MECHANISMS[mech]:<18} {s.routes} prefixes, {s.paths} paths "
                      f"(deploy {s.deploy_s:.1f} s)", flush=True)
        except MhlabError as exc:
            limit = f"N={n}: {exc}"
            print(f"stopping: {limit}", file=sys.stderr)
            break
    print()
    print(table(samples))
    fits = {mech: fit([s for s in samples if s.mechanism == mech]) for mech in MECHANISMS}
    for mech, line in fits.items():
        if line:
            print(f"{MECHANISMS[mech]}: routes = {line[0]:.2f} + {line[1]:.3f} x N")
    report = {"samples": [s.as_dict() for s in samples], "limit": limit,
              "fit": {m: None if f is None else {"intercept": f[0], "slope": f[1]} for m, f in fits.items()},
              "elapsed_s": round(time.monotonic() - t0, 1)}
    (args.out / "table_growth.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(samples, args.out / "table_growth.png")
    print(f"\nwrote {args.out / 'table_growth.json'} and {args.out / 'table_growth.png'}")
    return 0 if samples and limit is None else 1


if __name__ == "__main__":
    sys.exit(main())
