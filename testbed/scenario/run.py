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

from ..errors import LabError, ScenarioError, UsageError
from ..faults import Action, FaultError, resolve_link
from ..kinds import load_lab, netplan_for
from ..lab import Lab
from .analysis import FaultEvent, RunRecord, ScenarioResult, analyse
from .flows import Traffic
from .load import LoadedScenario, load_scenario
from .provenance import provenance
from .report import ReportFiles, write_report
from .resolve import PlannedLab, Resolved, resolve

Progress = Callable[[str], None]


@dataclass(frozen=True)
class RunOutcome:
    result: ScenarioResult
    files: ReportFiles
    lab: str


def _quiet(_: str) -> None:
    pass


def default_out_dir(loaded: LoadedScenario) -> Path:
    return Path("reports") / (loaded.scenario.name or Path(loaded.doc.file).stem)


def check_out_dir(out_dir: str | Path) -> Path:
    """The report directory may exist (files in it are replaced), but not as a file."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UsageError(f"-o {out}: that is an existing file, not a directory")
    return out


def run_scenario(path: str | Path, out_dir: str | Path | None = None, *, lab: Lab | None = None,
                 attach: str | None = None, lab_name: str | None = None, keep_lab: bool = False,
                 pcap: list[str] | None = None, progress: Progress = _quiet) -> RunOutcome:
    """Run a scenario file end to end and write its report (``out_dir``, default ``reports/<name>``).

    The lab: ``lab`` (a Lab object), else the running lab named ``attach``, else the scenario's ``lab:``
    (a lab file: deployed, as ``lab_name`` if given, and torn down unless ``keep_lab``; a name: attached)."""
    loaded = load_scenario(path)
    return run_loaded(loaded, out_dir or default_out_dir(loaded), lab=lab, attach=attach, lab_name=lab_name,
                      keep_lab=keep_lab, pcap=pcap or [], progress=progress)


def lab_file(loaded: LoadedScenario, target: Path | str) -> Path:
    """The scenario's lab file, which must exist (said at the scenario's ``lab:`` line)."""
    path = Path(target)
    if not path.is_file():
        raise ScenarioError([loaded.doc.problem(("lab",), f"no lab file {path} (a path ending in .yaml is a lab "
                                                          "file relative to the scenario; anything else names a "
                                                          "running lab)")])
    return path


def dry_run(loaded: LoadedScenario, attach: str | None = None, lab_name: str | None = None) -> Resolved:
    """Resolve the scenario against its lab (the lab file's plan, or a running lab) and build nothing."""
    if attach:
        return resolve(loaded, Lab.attach(attach))[0]
    kind, target = loaded.lab_target()
    if kind == "running":
        return resolve(loaded, Lab.attach(str(target)))[0]
    return resolve(loaded, PlannedLab(netplan_for(load_lab(lab_file(loaded, target))), lab_name))[0]


def run_loaded(loaded: LoadedScenario, out_dir: str | Path, *, lab: Lab | None = None, attach: str | None = None,
               lab_name: str | None = None, keep_lab: bool = False, pcap: list[str] | None = None,
               progress: Progress = _quiet, raise_neigh_table: bool = False, ksm=None) -> RunOutcome:
    """``raise_neigh_table``: a lab deployed for the run may raise the host's neighbour table (see
    ``testbed.neightable``); ``ksm`` (``testbed.ksm.KsmOptions``): its FRR daemons start open to KSM."""
    scenario = loaded.scenario
    out = check_out_dir(out_dir)
    owned = False
    topology_file: Path | None = None
    if lab is None:
        kind, target = loaded.lab_target()
        attach = attach or (str(target) if kind == "running" else None)
        if attach:
            lab = Lab.attach(attach)
        else:
            topology_file = lab_file(loaded, target)
            model = load_lab(topology_file)
            resolve(loaded, PlannedLab(netplan_for(model), lab_name))  # every problem before anything is built
            progress(f"deploying {target}")
            lab = Lab.deploy(model, name=lab_name, progress=progress, raise_neigh_table=raise_neigh_table, ksm=ksm)
            owned = True
    if topology_file is None:  # an attached lab: the file it was deployed from, else the run directory's copy
        source = lab.rundir.meta().get("topology")
        topology_file = Path(source) if source and Path(source).is_file() else lab.rundir.path / "topology.yaml"
    try:
        resolved, actions = resolve(loaded, lab, check_kernel=True, log_dir=out / "logs")
        out.mkdir(parents=True, exist_ok=True)
        captures = _start_captures(lab, pcap or [], out)
        plans = list(resolved.flows)
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
        files = write_report(result, out, provenance(lab.name, lab.topology, topology_file, loaded.doc.file))
        progress(f"report written to {out}")
        return RunOutcome(result, files, lab.name)
    finally:
        if owned and not keep_lab:
            progress("tearing the lab down")
            lab.destroy()


def pcap_links(values: list[str]) -> list[str]:
    """``--pcap`` values (repeatable, each may list links ';'-separated) -> link references, in order,
    each once."""
    out: list[str] = []
    for value in values:
        for v in value.split(";"):
            if v and v not in out:
                out.append(v)
    return out


def _start_captures(lab: Lab, links: list[str], out: Path):
    procs = []
    for ref in pcap_links(links):
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
            # the fault's instant is when it has taken effect (the call returned): windows such as
            # `after: cut` count only what started once the link was really down
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
