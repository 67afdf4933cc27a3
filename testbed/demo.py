"""``mhlab demo``: the thesis's story in one run - the same fault on the same lab, once per mechanism.

Every mechanism that names a demo scenario (``Mechanism.demo``) is one row; ``none`` comes first, as the
problem the others solve.  A row deploys its scenario's lab with every site's mechanism set to the row's
mechanism (the file's options are kept only for the mechanism the file was written for), runs the scenario
on it and tears it down.  Rows run in parallel, one process each (a process builds one lab at a time), in
labs named ``<prefix><index><mechanism>``.

The results are read as a user would ask: did the established connection survive, how long was the
longest silence, and did new connections work after the fault, from which source address.
"""

from __future__ import annotations

import multiprocessing
import re
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from .errors import MhlabError, TopologyError
from .kinds import load_lab
from .lab import Lab
from .mechanisms import Mechanism, mechanisms
from .scenario.analysis import FlowResult, ScenarioResult
from .scenario.load import LoadedScenario, load_scenario
from .scenario.model import IspAddress
from .scenario.run import run_loaded
from .topology import Topology

REPO_ROOT = Path(__file__).resolve().parent.parent
Progress = Callable[[str], None]


@dataclass(frozen=True)
class DemoRow:
    """One mechanism's part of the story: which scenario, on which lab name."""

    mechanism: str
    thesis: str
    summary: str
    scenario: Path
    lab_name: str


@dataclass(frozen=True)
class NewConnections:
    """New connections opened after the fault from one source address."""

    source: str  # the ISP whose prefix the address is from (or the literal address)
    address: str | None
    ok: int
    total: int


@dataclass(frozen=True)
class RowResult:
    """What one row measured, in the words of the table; ``error`` set when the row could not run."""

    row: DemoRow
    story: str = ""  # the scenario's description
    survives: bool | None = None
    longest_gap_ms: float | None = None
    gap_open: bool = False
    new_connections: tuple[NewConnections, ...] = ()
    wants_met: tuple[tuple[str, bool], ...] = ()  # the scenario's expectations, by their names
    result: ScenarioResult | None = None
    report_dir: Path | None = None
    wall_s: float = 0.0
    error: str = ""


@dataclass(frozen=True)
class DemoResult:
    rows: tuple[RowResult, ...]
    wall_s: float
    parallel: bool

    @property
    def ran(self) -> bool:
        return all(not r.error for r in self.rows)


def demo_rows(registry: dict[str, Mechanism] | None = None, prefix: str = "demo") -> list[DemoRow]:
    """The mechanisms with a demo scenario, the baseline first (the problem), then in registry order."""
    found = [m for m in (registry or mechanisms()).values() if m.demo]
    found.sort(key=lambda m: not m.baseline)
    return [DemoRow(m.name, m.thesis, m.summary, REPO_ROOT / m.demo, lab_name(prefix, i, m.name))
            for i, m in enumerate(found)]


def lab_name(prefix: str, index: int, mechanism: str) -> str:
    """``demo0none``, ``demo1sadrs``, ``demo2shim``: unique per row, a valid lab name (10 characters)."""
    return f"{prefix}{index}{re.sub(r'[^A-Za-z0-9]', '', mechanism)}"[:10]



def row_lab(loaded: LoadedScenario, mechanism: str) -> Topology:
    kind, target = loaded.lab_target()
    if kind != "topology":
        raise TopologyError([loaded.doc.problem(("lab",), "a demo scenario names a lab file (*.yaml), "
                                                "not a running lab")])
    return load_lab(target).with_mechanism(mechanism)


def summarise(row: DemoRow, loaded: LoadedScenario, result: ScenarioResult) -> RowResult:
    """The scenario's first tcpseq flow is the established connection (its longest gap: of those that end
    after the first fault); every probe flow is one source of new connections."""
    flows = {f.name: f for f in result.flows}
    est = next((flows[f.name] for f in loaded.scenario.traffic if f.kind == "tcpseq"), None)
    news = tuple(_new_connections(flows[f.name], f.src) for f in loaded.scenario.traffic if f.kind == "probe")
    wants = tuple((_want_name(loaded, i), v.passed) for i, v in enumerate(result.verdicts))
    story = loaded.scenario.description
    if est is None:
        return RowResult(row, story, new_connections=news, wants_met=wants, result=result)
    fault_at = min((f.at - result.t0 for f in result.faults), default=0.0)
    after = [g for g in est.gaps if g.end > fault_at]  # silences before the fault are not the story
    return RowResult(row, story, survives=_kept(est), longest_gap_ms=max((g.duration for g in after), default=0.0) * 1000,
                     gap_open=any(g.open for g in after), new_connections=news, wants_met=wants, result=result)


def _kept(flow: FlowResult) -> bool:
    """The one connection carried data to the end: never broken, never replaced, no gap left open."""
    return (flow.delivered > 0 and flow.connections_broken == 0 and flow.connections_opened <= 1
            and not any(g.open for g in flow.gaps))


def _new_connections(flow: FlowResult, selector) -> NewConnections:
    source = selector.isp if isinstance(selector, IspAddress) else str(selector or "default")
    after = flow.attempt_windows[0] if flow.attempt_windows else None
    ok, total = (after.after_ok, after.after_total) if after else (flow.attempts_ok, flow.attempts_total)
    return NewConnections(source, flow.src, ok, total)


def _want_name(loaded: LoadedScenario, index: int) -> str:
    e = loaded.scenario.expect[index]
    return e.name or e.describe()


def run_row(row: DemoRow, out_dir: Path, run_root: str | None = None, verbose: bool = True) -> RowResult:
    """Deploy the row's lab, run its scenario, tear down (also on failure).  Runs in a worker process."""
    t0 = time.monotonic()
    show = _row_progress(row, t0, verbose)
    try:
        loaded = load_scenario(row.scenario)
        show(f"deploying lab {row.lab_name} (every site: {row.mechanism})")
        lab = Lab.deploy(row_lab(loaded, row.mechanism), name=row.lab_name, root=run_root)
        try:
            show(f"up in {lab.timings['total']:.1f} s; {loaded.scenario.duration:g} s of traffic")
            out = out_dir / row.mechanism
            shutil.rmtree(out, ignore_errors=True)  # the traffic agents append to their logs: start clean
            outcome = run_loaded(loaded, out, lab=lab, progress=_only_faults(show))
        finally:
            lab.destroy()
        show("done, lab torn down")
        return replace(summarise(row, loaded, outcome.result), report_dir=out, wall_s=time.monotonic() - t0)
    except MhlabError as exc:
        return RowResult(row, error=str(exc), wall_s=time.monotonic() - t0)


def _row_progress(row: DemoRow, t0: float, verbose: bool) -> Progress:
    def show(msg: str) -> None:
        if verbose:
            print(f"[{time.monotonic() - t0:5.1f}s] {row.mechanism:<12} {msg}", file=sys.stderr, flush=True)
    return show


def _only_faults(show: Progress) -> Progress:
    """Three labs print at once: of the run loop's lines, only the faults being applied."""
    def filtered(msg: str) -> None:
        if " fault " in msg:
            show(msg)
    return filtered


def run_demo(out_dir: str | Path = "reports/demo", prefix: str = "demo", parallel: bool = True,
             run_root: str | None = None, verbose: bool = True,
             registry: dict[str, Mechanism] | None = None) -> DemoResult:
    """Every row, in parallel processes (or one after the other); results in row order."""
    out = Path(out_dir)
    rows = demo_rows(registry, prefix)
    t0 = time.monotonic()
    if parallel and len(rows) > 1:
        # spawn: a fresh interpreter per row, nothing of this process's state (Mininet's included) inherited
        with ProcessPoolExecutor(len(rows), mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(run_row, r, out, run_root, verbose) for r in rows]
            results = tuple(f.result() for f in futures)
    else:
        results = tuple(run_row(r, out, run_root, verbose) for r in rows)
    return DemoResult(results, time.monotonic() - t0, parallel and len(rows) > 1)
