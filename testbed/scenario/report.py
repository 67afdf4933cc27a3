"""Scenario results -> ``report.json`` (versioned schema), ``report.md``, ``timeline.png`` and a terminal table.

``report.json`` is the contract for other tools: its ``schema`` field names the version, and fields are
only ever added within a version.  Times are seconds since time 0 (traffic start); durations are ms.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .analysis import FlowResult, ScenarioResult, Verdict
from .flowkinds import flow_kind

SCHEMA = "mhlab.scenario-report/1"


@dataclass(frozen=True)
class ReportFiles:
    json: Path
    markdown: Path
    timeline: Path


def report_dict(result: ScenarioResult, made_by: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON document: scenario, verdicts, faults (relative times), per-flow measurements, and
    ``provenance`` (how it was made: versions, kernel, lab, mechanisms, file hashes) when given."""
    faults = [{"name": f.name, "kind": f.kind, "at": f.at - result.t0,
               "until": None if f.until is None else f.until - result.t0, "detail": f.detail} for f in result.faults]
    doc = {
        "schema": SCHEMA, "scenario": result.scenario, "lab": result.lab, "duration": result.duration,
        "t0_unix": result.t0, "passed": result.passed, "timeline_bin_s": result.bin_s,
        "faults": faults, "expectations": [dataclasses.asdict(v) for v in result.verdicts],
        "flows": [dataclasses.asdict(f) for f in result.flows], "notes": list(result.notes),
    }
    if made_by is not None:
        doc["provenance"] = made_by
    return _rounded(doc)


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(v) for v in value]
    return value


def write_report(result: ScenarioResult, out_dir: Path, made_by: dict[str, Any] | None = None) -> ReportFiles:
    """Write all three files into ``out_dir`` (created if needed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = ReportFiles(out_dir / "report.json", out_dir / "report.md", out_dir / "timeline.png")
    files.json.write_text(json.dumps(report_dict(result, made_by), indent=2) + "\n")
    files.markdown.write_text(markdown(result))
    plot_timeline(result, files.timeline)
    return files


# ---------------------------------------------------------------- formatting

def fmt_ms(ms: float | None, never: str = "never") -> str:
    if ms is None:
        return never
    return f"{ms / 1000:.2f} s" if ms >= 1000 else f"{ms:.0f} ms"


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def fmt_measured(v: Verdict) -> str:
    if v.measured is None:
        return v.note or "-"
    if v.metric.endswith("_ms"):
        return fmt_ms(v.measured)
    if v.metric in ("loss", "reordering", "new_connections_ok"):
        return fmt_ratio(v.measured)
    return f"{v.measured:g}"


def _failovers(f: FlowResult) -> str:
    return ", ".join(f"{x.fault}: {fmt_ms(x.failover_ms)}" for x in f.failovers) or "-"


def _connections(f: FlowResult) -> str:
    if f.kind == "tcpseq":
        return f"{f.connections_opened} opened, {f.connections_broken} broken"
    if f.attempts_total:
        return f"{f.attempts_ok}/{f.attempts_total} ok"
    return "-"


def _max_gap(f: FlowResult) -> str:
    open_gap = any(g.open for g in f.gaps)
    return fmt_ms(f.max_gap_ms) + (" (open)" if open_gap else "")


FLOW_HEADERS = ("flow", "kind", "path", "delivered", "loss", "max gap", "failover", "connections")


def flow_rows(result: ScenarioResult) -> list[tuple[str, ...]]:
    return [(f.name, f.kind, f"{f.from_node} {f.src or ''} -> {f.to_node} {f.dst or ''}".replace("  ", " "),
             str(f.delivered), fmt_ratio(f.loss), _max_gap(f), _failovers(f), _connections(f))
            for f in result.flows]


def verdict_rows(result: ScenarioResult) -> list[tuple[str, ...]]:
    return [("PASS" if v.passed else "FAIL", v.expectation, fmt_measured(v), f"{v.window[0]:g}..{v.window[1]:g} s")
            for v in result.verdicts]


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [headers, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def md_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(headers), line(["---"] * len(headers)), *(line(r) for r in rows)])


def summary(result: ScenarioResult) -> str:
    """The compact table printed at the end of a run."""
    parts = [text_table(FLOW_HEADERS, flow_rows(result))]
    if result.verdicts:
        parts.append(text_table(("", "expectation", "measured", "window"), verdict_rows(result)))
    failed = sum(not v.passed for v in result.verdicts)
    verdict = "PASS" if result.passed else f"FAIL ({failed} of {len(result.verdicts)} expectations failed)"
    parts.append(f"{result.scenario or 'scenario'}: {verdict}")
    return "\n\n".join(parts) + "\n"


def markdown(result: ScenarioResult) -> str:
    """``report.md``: verdicts first (what a person asks first), then faults, flows, gaps, new connections."""
    out = [f"# Scenario {result.scenario or '(unnamed)'}: {'PASS' if result.passed else 'FAIL'}", "",
           f"Lab `{result.lab}`, {result.duration:g} s of traffic. Times are seconds since traffic started.", ""]
    if result.verdicts:
        out += ["## Expectations", "", md_table(("result", "expectation", "measured", "window"),
                                                 verdict_rows(result)), ""]
    if result.faults:
        rows = [(f.name, f.kind, f"{f.at - result.t0:.3f}", "-" if f.until is None else f"{f.until - result.t0:.3f}",
                 f.detail) for f in result.faults]
        out += ["## Faults", "", md_table(("fault", "kind", "at (s)", "until (s)", "detail"), rows), ""]
    out += ["## Flows", "", md_table(FLOW_HEADERS, flow_rows(result)), ""]
    for f in result.flows:
        out += _flow_section(f)
    for note in result.notes:
        out.append(f"- note: {note}")
    return "\n".join(out) + "\n"


def _flow_section(f: FlowResult) -> list[str]:
    out = [f"### {f.name} ({f.kind})", "",
           f"Window {f.window[0]:.3f}..{f.window[1]:.3f} s; a gap is silence over {f.gap_threshold_ms:g} ms.", ""]
    if f.gaps:
        rows = [(f"{g.start:.3f}", "-" if g.open else f"{g.end:.3f}", fmt_ms(g.duration * 1000),
                 "never recovered" if g.open else "") for g in f.gaps]
        out += [md_table(("gap start (s)", "end (s)", "duration", ""), rows), ""]
    else:
        out += ["No gaps.", ""]
    if f.attempt_windows:
        rows = [(w.fault, f"{w.before_ok}/{w.before_total}", f"{w.after_ok}/{w.after_total}")
                for w in f.attempt_windows]
        out += [md_table(("new connections around", "before: ok/total", "after: ok/total"), rows), ""]
    if f.errors:
        out += ["Errors: " + "; ".join(f"{msg} (x{n})" for msg, n in f.errors), ""]
    return out


# ---------------------------------------------------------------- plot

def plot_timeline(result: ScenarioResult, path: Path) -> None:
    """One row per flow: deliveries per second (probes and requests: each attempt as a green/red mark), gaps
    shaded red, fault instants as labelled dashed lines, each undo (``until``) as a labelled dotted line."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    n = max(1, len(result.flows))
    fig, axes = plt.subplots(n, 1, figsize=(11, 1.8 * n + 0.8), sharex=True, squeeze=False)
    end = max([result.duration] + [f.window[1] for f in result.flows])
    for ax, flow in zip(axes[:, 0], result.flows):
        _plot_flow(ax, flow, result.bin_s)
        _mark_faults(ax, result, label=ax is axes[0, 0])
    axes[-1, 0].set_xlabel("seconds since traffic start")
    axes[-1, 0].set_xlim(0, end)
    fig.suptitle(f"{result.scenario or 'scenario'}: {'PASS' if result.passed else 'FAIL'}", y=0.995)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_flow(ax: Any, flow: FlowResult, bin_s: float) -> None:
    if "answered" in flow_kind(flow.kind).metrics:  # request/reply kinds (probe, sam): one mark per attempt
        ok = [t for t, good in flow.attempts if good]
        bad = [t for t, good in flow.attempts if not good]
        ax.plot(ok, [1] * len(ok), "|", color="tab:green", markersize=12, label="probe ok")
        ax.plot(bad, [0] * len(bad), "x", color="tab:red", label="probe failed")
        ax.set_yticks([0, 1], ["fail", "ok"])
        ax.set_ylim(-0.5, 1.5)
    else:
        xs = [i * bin_s for i in range(len(flow.timeline))]
        ax.step(xs, [c / bin_s for c in flow.timeline], where="post", color="tab:blue", linewidth=1)
        ax.set_ylabel("per s")
    for gap in flow.gaps:
        ax.axvspan(gap.start, gap.end, color="tab:red", alpha=0.15, linewidth=0)
    ax.set_title(f"{flow.name} ({flow.kind}) {flow.from_node} -> {flow.to_node}", fontsize=9, loc="left")


def _mark_faults(ax: Any, result: ScenarioResult, label: bool) -> None:
    """Each fault: a dashed line at its instant; its undo (``until``) a dotted line, the time between a
    grey band; labels on the top row only."""
    for fault in result.faults:
        at = fault.at - result.t0
        ax.axvline(at, color="black", linestyle="--", linewidth=1)
        if fault.until is not None:
            until = fault.until - result.t0
            ax.axvspan(at, until, color="grey", alpha=0.12, linewidth=0)
            ax.axvline(until, color="tab:green", linestyle=":", linewidth=1.5)
        if label:
            ax.annotate(f"{fault.name} ({fault.kind})", (at, 1.0), xycoords=("data", "axes fraction"),
                        xytext=(3, -10), textcoords="offset points", fontsize=8)
            if fault.until is not None:
                ax.annotate(f"{fault.name} undone", (fault.until - result.t0, 1.0), xycoords=("data", "axes fraction"),
                            xytext=(3, -20), textcoords="offset points", fontsize=8, color="tab:green")
