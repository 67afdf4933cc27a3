"""The scenario run loop: lab up (or attached), traffic started, faults applied on time, report written.

Time 0 is when the clients may start (servers already listen).  Faults and client starts are scheduled
on one monotonic clock; every applied fault is recorded with its absolute time for the analysis.  All
faults are resolved against the lab *before* traffic starts, so a wrong reference fails the run early.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import LabError, TopologyError
from ..faults import Action, FaultError, netem_available, prepare, resolve_link
from ..lab import Lab
from .analysis import FaultEvent, RunRecord, ScenarioResult, analyse
from .flows import Traffic, plan_flows
from .load import LoadedScenario, load_scenario, reference_problems
from .report import ReportFiles, write_report

Progress = Callable[[str], None]


@dataclass(frozen=True)
class RunOutcome:
    result: ScenarioResult
    files: ReportFiles
    lab: str


def _quiet(_: str) -> None:
    pass


def run_scenario(path: str | Path, out_dir: str | Path | None = None, *, lab: Lab | None = None,
                 lab_name: str | None = None, keep_lab: bool = False, pcap: list[str] | None = None,
                 progress: Progress = _quiet) -> RunOutcome:
    """Run a scenario file end to end and write its report (``out_dir``, default ``reports/<name>``)."""
    loaded = load_scenario(path)
    return run_loaded(loaded, out_dir or Path("reports") / (loaded.scenario.name or Path(path).stem), lab=lab,
                      lab_name=lab_name, keep_lab=keep_lab, pcap=pcap or [], progress=progress)


def run_loaded(loaded: LoadedScenario, out_dir: str | Path, *, lab: Lab | None = None, lab_name: str | None = None,
               keep_lab: bool = False, pcap: list[str] | None = None, progress: Progress = _quiet) -> RunOutcome:
    scenario = loaded.scenario
    owned = False
    if lab is None:
        kind, target = loaded.lab_target()
        if kind == "topology":
            progress(f"deploying {target}")
            lab = Lab.deploy(target, name=lab_name, progress=progress)
            owned = True
        else:
            lab = Lab.attach(str(target))
    try:
        _check_references(loaded, lab)
        actions = _prepare_faults(loaded, lab)
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        captures = _start_captures(lab, pcap or [], out)
        plans = plan_flows(scenario, lab.plan.addresses, out / "logs")
        traffic = Traffic(lab, plans)
        progress(f"starting {len(plans)} flows' servers")
        traffic.start_servers()
        try:
            record = _timeline(scenario, lab, traffic, plans, actions, progress)
        finally:
            traffic.stop()
            for action in actions:
                action.revert()
            for proc in captures:
                proc.terminate()
                proc.wait(timeout=5)
        result = analyse(scenario, record, traffic.traces())
        files = write_report(result, out)
        progress(f"report written to {out}")
        return RunOutcome(result, files, lab.name)
    finally:
        if owned and not keep_lab:
            progress("tearing the lab down")
            lab.destroy()


def _check_references(loaded: LoadedScenario, lab: Lab) -> None:
    links = {l.segment for l in lab.net.links}
    spaces = {i.name for i in lab.topology.isps} | ({"pi"} if lab.plan.pi_prefixes else set())  # {isp: pi}
    problems = reference_problems(loaded, set(lab.net.nodes), spaces, links)
    if problems:
        raise TopologyError(problems)


def _prepare_faults(loaded: LoadedScenario, lab: Lab) -> list[Action]:
    scenario = loaded.scenario
    if any(getattr(f, "needs_netem", False) for f in scenario.faults) and not netem_available(lab):
        i = next(i for i, f in enumerate(scenario.faults) if getattr(f, "needs_netem", False))
        raise TopologyError([loaded.doc.problem(("faults", i, "kind"), "delay/jitter needs the netem qdisc, "
                                                "which this kernel does not have; run it in the Vagrant VM "
                                                "(full Debian kernel) or drop this fault")])
    actions = []
    for i, fault in enumerate(scenario.faults):
        try:
            actions.append(prepare(fault, lab))
        except FaultError as exc:
            raise TopologyError([loaded.doc.problem(("faults", i), str(exc))]) from None
    return actions


def _start_captures(lab: Lab, links: list[str], out: Path):
    procs = []
    for ref in links:
        try:
            link = resolve_link(lab, ref if "," not in ref else tuple(ref.split(",")))
        except FaultError as exc:
            raise LabError(f"--pcap {ref}: {exc}") from None
        end = link.a
        path = out / f"{link.name}.pcap"
        procs.append(lab[end.node].popen(["tcpdump", "-q", "-n", "-U", "-i", end.ifname, "-w", str(path)],
                                         name=f"tcpdump-{link.name}"))
    if procs:
        time.sleep(0.5)  # tcpdump needs a moment before it captures
    return procs


def _timeline(scenario, lab: Lab, traffic: Traffic, plans, actions: list[Action], progress: Progress) -> RunRecord:
    """Start clients and apply/undo faults at their offsets; returns the observed times."""
    events: list[tuple[float, int, str, object]] = []
    for p in plans:
        events.append((p.start, 0, "client", p))
    for fault, action in zip(scenario.faults, actions):
        events.append((fault.at, 1, "apply", (fault, action)))
        if fault.until is not None and action.undo is not None:
            events.append((fault.until, 2, "undo", (fault, action)))
    events.sort(key=lambda e: (e[0], e[1]))
    t0_wall, t0 = time.time(), time.monotonic()
    applied: dict[str, list[float | None]] = {}
    next_tick = 1.0
    progress(f"t=0: traffic starts ({scenario.duration:g} s)")
    for offset, _, what, payload in events + [(scenario.duration, 9, "end", None)]:
        while True:
            now = time.monotonic() - t0
            if now >= offset:
                break
            if now >= next_tick:
                progress(f"t={next_tick:.0f}s")
                next_tick += max(1.0, scenario.duration / 10)
            time.sleep(min(0.01, offset - now))
        if what == "client":
            traffic.start_client(payload)
        elif what == "apply":
            fault, action = payload
            progress(f"t={time.monotonic() - t0:.2f}s fault {fault.name}: {action.describe}")
            action.do()
            applied[fault.name] = [t0_wall + (time.monotonic() - t0), None]
        elif what == "undo":
            fault, action = payload
            progress(f"t={time.monotonic() - t0:.2f}s undo {fault.name}")
            action.revert()
            applied[fault.name][1] = t0_wall + (time.monotonic() - t0)
    t_end = t0_wall + (time.monotonic() - t0)
    faults = tuple(FaultEvent(f.name, f.kind, applied[f.name][0], applied[f.name][1], a.describe)
                   for f, a in zip(scenario.faults, actions) if f.name in applied)
    return RunRecord(t0_wall, t_end, faults)
