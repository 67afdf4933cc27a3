"""The demo's results side by side: a terminal table, ``report.md``, ``report.json`` and ``comparison.png``.

One row per mechanism, in the words a user asks in: does the established connection survive, how long
was the longest silence, how many new connections worked after the fault and from which source address.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .demo import REPO_ROOT, DemoResult, RowResult
from .scenario.report import fmt_ms, md_table, text_table

SCHEMA = "mhlab.demo-report/1"


@dataclass(frozen=True)
class DemoFiles:
    markdown: Path
    json: Path
    png: Path


def sources(demo: DemoResult) -> list[str]:
    """Every source address kind that some row opened new connections from, in first-seen order."""
    return list(dict.fromkeys(n.source for r in demo.rows for n in r.new_connections))


def headers(demo: DemoResult) -> tuple[str, ...]:
    return ("mechanism", "thesis", "connection survives", "longest gap after the fault",
            *(f"new from {s} addr." for s in sources(demo)))


def _yes_no(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


def _gap(r: RowResult) -> str:
    if r.longest_gap_ms is None:
        return "-"
    if not r.longest_gap_ms:
        est = next((f for f in r.result.flows if f.kind == "tcpseq"), None) if r.result else None
        return f"none over {fmt_ms(est.gap_threshold_ms)}" if est else "none"
    return fmt_ms(r.longest_gap_ms) + (", never recovered" if r.gap_open else "")


def rows(demo: DemoResult) -> list[tuple[str, ...]]:
    out = []
    for r in demo.rows:
        if r.error:
            out.append((r.row.mechanism, r.row.thesis, f"could not run: {r.error.splitlines()[0]}", "",
                        *("" for _ in sources(demo))))
            continue
        by_source = {n.source: f"{n.ok}/{n.total}" for n in r.new_connections}
        out.append((r.row.mechanism, r.row.thesis, _yes_no(r.survives), _gap(r),
                    *(by_source.get(s, "-") for s in sources(demo))))
    return out


def fault_line(demo: DemoResult) -> str:
    """What happened, from the first row that ran: the scenario's description, its fault, its lab."""
    done = next((r for r in demo.rows if r.result is not None), None)
    if done is None:
        return "no row ran"
    res = done.result
    faults = "; ".join(f"t={f.at - res.t0:.1f} s: {f.name} ({f.kind}, {f.detail})" for f in res.faults)
    return (f"{done.story or res.scenario}\n{faults}; {res.duration:g} s of traffic.  Lab {Path(res.lab).name}, "
            f"deployed once per row with every site's mechanism set to the row's.")


def wanted_rows(demo: DemoResult) -> list[tuple[str, ...]]:
    """The scenario's expectations (what the site's users want), met or not, per mechanism."""
    wants = list(dict.fromkeys(w for r in demo.rows for w, _ in r.wants_met))
    return [(w, *(_yes_no(dict(r.wants_met).get(w)) for r in demo.rows)) for w in wants]


LEGEND = ("connection survives: the established TCP connection (tcpseq, hA's ISP-A1 address -> hB) still carries "
          "data at the end, never broken or replaced.\nlongest gap: its longest silence after the fault.  new from X addr.: "
          "new TCP connections (curl) from hA's address in X's prefix after the fault, ok/attempted.")


def terminal(demo: DemoResult) -> str:
    parts = [fault_line(demo), text_table(headers(demo), rows(demo)), LEGEND]
    if wanted_rows(demo):
        parts.append(text_table(("wanted", *(r.row.mechanism for r in demo.rows)), wanted_rows(demo)))
    how = "in parallel" if demo.parallel else "one after the other"
    parts.append(f"{len(demo.rows)} labs, {how}: {demo.wall_s:.1f} s wall time")
    return "\n\n".join(parts) + "\n"


def markdown(demo: DemoResult, out_dir: Path) -> str:
    out = ["# The thesis's story: one fault, one lab, each mechanism", "", fault_line(demo).replace("\n", ". "), "",
           md_table(headers(demo), rows(demo)), "", LEGEND.replace("\n", " "), "", "![comparison](comparison.png)", ""]
    if wanted_rows(demo):
        out += ["## What the site's users want", "", md_table(("wanted", *(r.row.mechanism for r in demo.rows)),
                                                               wanted_rows(demo)), ""]
    out += ["## Rows", ""]
    for r in demo.rows:
        where = f"[report]({r.report_dir.relative_to(out_dir)}/report.md)" if r.report_dir else r.error
        out.append(f"- `{r.row.mechanism}` (thesis {r.row.thesis}): {r.row.summary}; lab `{r.row.lab_name}`, "
                   f"{r.wall_s:.1f} s; {where}")
    how = "in parallel" if demo.parallel else "one after the other"
    out += ["", f"{len(demo.rows)} labs, {how}: {demo.wall_s:.1f} s wall time.", ""]
    return "\n".join(out)


def report_dict(demo: DemoResult, out_dir: Path) -> dict[str, Any]:
    return {
        "schema": SCHEMA, "fault": fault_line(demo), "wall_s": round(demo.wall_s, 2), "parallel": demo.parallel,
        "rows": [{
            "mechanism": r.row.mechanism, "thesis": r.row.thesis, "summary": r.row.summary, "lab": r.row.lab_name,
            "scenario": _shown(r.row.scenario), "error": r.error or None,
            "connection_survives": r.survives,
            "longest_gap_ms": None if r.longest_gap_ms is None else round(r.longest_gap_ms, 1),
            "gap_never_recovered": r.gap_open,
            "new_connections_after_fault": [{"source": n.source, "address": n.address, "ok": n.ok, "total": n.total}
                                            for n in r.new_connections],
            "wanted": {w: met for w, met in r.wants_met},
            "report": None if r.report_dir is None else str(r.report_dir.relative_to(out_dir) / "report.json"),
            "wall_s": round(r.wall_s, 2),
        } for r in demo.rows],
    }


def _shown(path: Path) -> str:
    """Repo-relative when inside the repository (reports are shared), else absolute."""
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def write(demo: DemoResult, out_dir: str | Path) -> DemoFiles:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = DemoFiles(out / "report.md", out / "report.json", out / "comparison.png")
    files.markdown.write_text(markdown(demo, out))
    files.json.write_text(json.dumps(report_dict(demo, out), indent=2) + "\n")
    plot(demo, files.png)
    return files


# ---------------------------------------------------------------- plot

def plot(demo: DemoResult, path: Path) -> None:
    """One panel per mechanism, one lane per flow: green where the established connection delivered,
    red where it was silent; each new-connection attempt a green tick (ok) or a red cross (failed)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    ran = [r for r in demo.rows if r.result is not None]
    fig, axes = plt.subplots(max(1, len(ran)), 1, figsize=(11, 1.9 * max(1, len(ran)) + 0.9), sharex=True,
                             squeeze=False)
    for ax, r in zip(axes[:, 0], ran):
        _panel(ax, r)
    axes[-1, 0].set_xlabel("seconds since traffic start")
    fig.suptitle("The same fault on the same lab, per mechanism", y=0.995)
    fig.text(0.01, 0.005, "established connection: green = data flowing, red = silent.  "
             "New connections: green tick = connected, red cross = failed.  Dashed line: the fault.", fontsize=8)
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _panel(ax: Any, r: RowResult) -> None:
    res = r.result
    est = next((f for f in res.flows if f.kind == "tcpseq"), None)
    probes = [f for f in res.flows if f.kind == "probe"]
    lanes = ([est] if est else []) + probes
    for y, flow in enumerate(reversed(lanes)):
        if flow.kind == "tcpseq":
            on = [(i * res.bin_s, res.bin_s) for i, c in enumerate(flow.timeline) if c]
            ax.broken_barh(on, (y - 0.3, 0.6), color="tab:green")
            for g in flow.gaps:
                ax.broken_barh([(g.start, g.end - g.start)], (y - 0.3, 0.6), color="tab:red")
        else:
            ok = [t for t, good in flow.attempts if good]
            bad = [t for t, good in flow.attempts if not good]
            ax.plot(ok, [y] * len(ok), "|", color="tab:green", markersize=11)
            ax.plot(bad, [y] * len(bad), "x", color="tab:red", markersize=5)
    names = {"tcpseq": "established", "probe": "new from {} addr."}
    by_name = {n.address: n.source for n in r.new_connections}
    ax.set_yticks(range(len(lanes)), [names[f.kind].format(by_name.get(f.src, f.src)) for f in reversed(lanes)],
                  fontsize=8)
    ax.set_ylim(-0.6, len(lanes) - 0.4)
    ax.set_xlim(0, res.duration)
    for f in res.faults:
        ax.axvline(f.at - res.t0, color="black", linestyle="--", linewidth=1)
        ax.annotate(f"{f.name}: {f.detail}", (f.at - res.t0, 0.0), xycoords=("data", "axes fraction"),
                    xytext=(3, 2), textcoords="offset points", fontsize=8,
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})
    news = ", ".join(f"{n.source} {n.ok}/{n.total}" for n in r.new_connections)
    ax.set_title(f"{r.row.mechanism} ({r.row.thesis}): connection survives: {_yes_no(r.survives)} (longest gap after "
                 f"the fault: {_gap(r)}); new connections after it: {news}", fontsize=9, loc="left")
