"""One I2P scenario file run many times, with the balancer's re-announcements on and off in turn, on the
same machine state: does the scenario's verdict depend on them, and what does the client see?

Each run deploys the scenario's own lab file with ``balancer.reannounce_s`` set (``--reannounce S``, and 0
for the runs without), runs the scenario unchanged (its faults, flows and expectations), and keeps the
routers' i2pd logs, the balancer's, backend's and frontends' output and the probe logs next to the run's
result.  The settings alternate run by run, so both see the same load.  Two streams may run at once
(``--stream a`` / ``--stream b`` start with opposite settings).  Per run: the verdict, the fraction of
requests answered from the fault to the end, the time from the fault until every later request was
answered, the first answer after it, and the probe's renewals.

    sudo .venv/bin/python experiments/i2p_scenario_runs.py scenarios/i2p-router-crash.yaml --runs 10 \\
        -o reports/i2p/scenario-crash --stream a
    .venv/bin/python experiments/i2p_scenario_runs.py scenarios/i2p-router-crash.yaml --report-only -o reports/i2p/scenario-crash
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from testbed.i2p.analysis import fraction_ok, read_requests, recovery_time  # noqa: E402
from testbed.kinds import load_lab  # noqa: E402
from testbed.lab import Lab  # noqa: E402
from testbed.scenario.load import load_scenario  # noqa: E402
from testbed.scenario.run import run_loaded  # noqa: E402

from experiments.i2p_handover import keep_logs  # noqa: E402


def settings(stream: str, runs: int, reannounce: float, alternate: bool = True) -> list[float]:
    """Alternating re-announcement periods, stream ``a`` starting with them on, ``b`` with them off; without
    ``alternate``, every run with ``reannounce``."""
    if not alternate:
        return [reannounce] * runs
    first, second = (reannounce, 0.0) if stream == "a" else (0.0, reannounce)
    return [first if i % 2 == 0 else second for i in range(runs)]


def client_view(log: Path, fault_at: float) -> dict[str, Any]:
    reqs = read_requests(log)
    after = [r for r in reqs if r.sent >= fault_at]
    renewals = sum(1 for line in log.read_text().splitlines() if '"ev":"renew"' in line.replace(" ", ""))
    return {"answered_after_fault": None if not after else round(fraction_ok(reqs, fault_at, after[-1].sent + 1), 3),
            "recovery_s": recovery_time(reqs, fault_at),
            "first_ok_s": next((round(r.sent - fault_at, 2) for r in after if r.ok), None),
            "answered_before_fault": fraction_ok(reqs, fault_at - 10, fault_at), "sent": len(reqs),
            "renewals": renewals}


def one_run(scenario: Path, name: str, reannounce: float, out: Path, lab_file: Path | None = None) -> dict[str, Any]:
    loaded = load_scenario(scenario)
    _, target = loaded.lab_target()
    model = load_lab(lab_file or Path(target))
    model = model.model_copy(update={"balancer": model.balancer.model_copy(update={"reannounce_s": reannounce})})
    started = time.time()
    lab = Lab.deploy(model, name=name)
    try:
        outcome = run_loaded(loaded, out, lab=lab)
    finally:
        keep_logs(lab, model, out / "lab")
        lab.destroy()
    result = outcome.result
    faults = [{"name": f.name, "detail": f.detail, "at": f.at} for f in result.faults]
    fault_at = result.faults[0].at if result.faults else None
    probes = [f for f in sorted(out.rglob("*.jsonl")) if read_requests(f)]
    clients = {f.stem: client_view(f, fault_at) for f in probes} if fault_at is not None else {}
    view = worst(list(clients.values()))
    return {"lab": name, "lab_file": str(lab_file or target), "hosting_transit": model.hosting_transit,
            "transit": model.transit, "reannounce_s": reannounce, "passed": result.passed, "started": started,
            "verdicts": [{"expectation": v.expectation, "passed": v.passed, "measured": v.measured}
                         for v in result.verdicts], "faults": faults, "clients": clients,
            "load": [round(x, 1) for x in os.getloadavg()], **view}


def worst(views: list[dict[str, Any]]) -> dict[str, Any]:
    """The client that fared worst (least answered after the fault; a recovery that never came counts as
    the longest): a scenario with several clients is as good as its worst one."""
    if not views:
        return {}
    return min(views, key=lambda v: (v["answered_after_fault"] if v["answered_after_fault"] is not None else -1,
                                     -(v["recovery_s"] if v["recovery_s"] is not None else math.inf)))


def group_of(run: dict[str, Any]) -> tuple[bool, str, float]:
    """(hosting routers carry transit, the run's --tag, re-announcement period): the runs' settings."""
    return bool(run.get("hosting_transit", True)), run.get("tag", ""), float(run["reannounce_s"])


def ordered_groups(runs: list[dict[str, Any]]) -> list[tuple[bool, str, float]]:
    """Hosting routers with transit first, then by tag, re-announcements on before off."""
    return sorted({group_of(r) for r in runs}, key=lambda g: (not g[0], g[1], -g[2]))


def label(group: tuple[bool, str, float]) -> str:
    transit, tag, period = group
    return (f"hosting routers {'carry' if transit else 'refuse'} transit, " + (f"{tag}, " if tag else "")
            + (f"re-announce every {period:g} s" if period else "no re-announcements"))


def spread(values: list[float | None]) -> str:
    """median [min-max] over the runs that have a value, and how many have none (never)."""
    vals = [v for v in values if v is not None]
    missing = len(values) - len(vals)
    if not vals:
        return f"- ({missing} never)"
    return f"{statistics.median(vals):.2f} [{min(vals):.2f}-{max(vals):.2f}]" + (f" ({missing} never)" if missing else "")


def summary(runs: list[dict[str, Any]]) -> str:
    lines = ["lab | runs | passed | answered from the fault to the end, median [range] | recovery s, median [range] "
             "| first answer s, median [range]"]
    groups = ordered_groups(runs)
    for group in groups:
        rows = [r for r in runs if group_of(r) == group]
        lines.append(f"{label(group)} | {len(rows)} | {sum(r['passed'] for r in rows)} | "
                     f"{spread([r.get('answered_after_fault') for r in rows])} | "
                     f"{spread([r.get('recovery_s') for r in rows])} | {spread([r.get('first_ok_s') for r in rows])}")
    for r in runs:
        failed = [v["expectation"] for v in r["verdicts"] if not v["passed"]]
        lines.append(f"  {r['lab']} ({label(group_of(r))}): {'PASS' if r['passed'] else 'FAIL'} "
                     f"answered {r.get('answered_after_fault')} recovery {r.get('recovery_s')} first "
                     f"{r.get('first_ok_s')} renewals {r.get('renewals')} {r['faults'][0]['detail'] if r['faults'] else ''}"
                     + (f" failed: {failed}" if failed else ""))
    return "\n".join(lines)


def plot(runs: list[dict[str, Any]], out: Path, title: str) -> None:
    """One row per setting, one dot per run: the time from the fault until every later request was
    answered (runs that never got there at the right edge), failed runs in red."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = ordered_groups(runs)[::-1]  # the table's first row on top
    never = max([r["recovery_s"] for r in runs if r.get("recovery_s") is not None] + [30.0]) + 10
    fig, ax = plt.subplots(figsize=(10, 1.4 + 0.9 * len(groups)))
    for y, group in enumerate(groups):
        rows = [r for r in runs if group_of(r) == group]
        for k, r in enumerate(rows):
            x = r["recovery_s"] if r.get("recovery_s") is not None else never
            ax.plot(x, y + (k - len(rows) / 2) * 0.05, "o", ms=7, alpha=0.75,
                    color="tab:blue" if r["passed"] else "tab:red")
    ax.axvspan(never - 2, never + 2, color="0.92", zorder=0)
    ax.text(never, len(groups) - 0.5, "never", ha="center", va="top", fontsize=8)
    def short(g: tuple[bool, str, float]) -> str:
        rows = [r for r in runs if group_of(r) == g]
        return (f"hosting routers {'carry' if g[0] else 'refuse'} transit\n" + (f"{g[1]}, " if g[1] else "")
                + (f"re-announce {g[2]:g} s" if g[2] else "no re-announcements")
                + f"\n{len(rows)} runs, {sum(r['passed'] for r in rows)} passed")
    ax.set_yticks(range(len(groups)), [short(g) for g in groups], fontsize=8)
    ax.set_ylim(-0.6, len(groups) - 0.4)
    ax.set_xlim(0, never + 3)
    ax.set_xlabel("s from the fault until every later request was answered (the worst client; red: the scenario failed)", fontsize=9)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "scenario_runs.png", dpi=120)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 2)[2])
    p.add_argument("scenario", type=Path, help="an I2P scenario file (its lab: is a lab file)")
    p.add_argument("-o", "--out", type=Path, required=True, help="folder for run-*.json, their logs and report.txt")
    p.add_argument("--runs", type=int, default=10, help="runs in this stream, settings alternating (default 10)")
    p.add_argument("--reannounce", type=float, default=5.0, metavar="S", help="the period of the runs with "
                   "re-announcements (default 5 s); the others run with 0")
    p.add_argument("--no-alternate", action="store_true", help="every run with --reannounce (the lab's "
                   "default is 5 s), none without")
    p.add_argument("--stream", choices=["a", "b"], default="a", help="a starts with re-announcements on, b off; "
                   "also names the labs (<prefix><stream><i>), so two streams can run at once")
    p.add_argument("--prefix", default="i2sr", help="lab-name prefix (default i2sr)")
    p.add_argument("--lab", type=Path, help="deploy this lab file instead of the scenario's own (same kind and "
                   "node names)")
    p.add_argument("--tag", default="", help="a label kept with each run and shown in its report row (e.g. the "
                   "balancer version), so runs of different code in one folder stay apart")
    p.add_argument("--report-only", action="store_true", help="only summarise the run-*.json files in -o")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        for i, period in enumerate(settings(args.stream, args.runs, args.reannounce, not args.no_alternate)):
            name = f"{args.prefix}{args.stream}{i}"
            folder = args.out / f"run-{name}"
            record = {**one_run(args.scenario, name, period, folder, args.lab), "tag": args.tag}
            (args.out / f"run-{name}.json").write_text(json.dumps(record, indent=1))
            print(f"{name} re-announce {period:g}: {'PASS' if record['passed'] else 'FAIL'} "
                  f"recovery {record.get('recovery_s')} answered {record.get('answered_after_fault')}", flush=True)
    runs = [json.loads(f.read_text()) for f in sorted(args.out.glob("run-*.json"))]
    text = summary(runs)
    (args.out / "report.txt").write_text(text + "\n")
    description = load_scenario(args.scenario).scenario.description
    plot(runs, args.out, f"{args.scenario.name} ({description}): the worst client, one dot per run")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
