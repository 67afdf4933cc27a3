"""Scenario file -> :class:`Scenario`, with every mistake reported as ``file:line: field: message``.

Validation happens in two passes so that all problems are reported at once: pydantic checks shapes
and ranges, then :func:`cross_problems` checks what refers to what (expectation -> flow, window ->
fault, times within the duration).  Names of nodes and ISPs can only be checked against a topology,
which the run loop does with :func:`reference_problems` once it has one.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import Problem, ScenarioError, TopologyError, did_you_mean
from ..yamlmarks import MarkedDoc, Path_, load_marked, unknown_field
from .contract import MULTIHOMING
from .flowkinds import METRIC_KINDS, flow_kind
from .model import FAULT_KINDS, FLOW_KINDS, RENAMED, Scenario, parse_time_ref

__all__ = ["LoadedScenario", "ScenarioError", "cross_problems", "load_scenario", "parse_scenario",
           "reference_problems", "looks_like_scenario", "file_kind"]
SCENARIO_KEYS = frozenset({"duration", "traffic", "faults", "expect"})


def looks_like_scenario(data: object) -> bool:
    """A scenario has ``lab:`` and at least one of duration/traffic/faults/expect; a lab file has neither."""
    return isinstance(data, dict) and "lab" in data and bool(SCENARIO_KEYS & set(data))


@dataclass(frozen=True)
class LoadedScenario:
    """A validated scenario plus where it came from (to resolve ``lab:`` and to locate later problems)."""

    scenario: Scenario
    doc: MarkedDoc
    base_dir: Path

    def lab_target(self) -> tuple[str, Path | str]:
        """``("topology", path)`` for a ``*.yaml``/``*.yml`` lab (relative to the scenario file) or
        ``("running", name)`` for the name of a lab that is already up."""
        lab = self.scenario.lab
        if lab.endswith((".yaml", ".yml")):
            return "topology", (self.base_dir / lab).resolve()
        return "running", lab


def file_kind(path: str | Path, assume: str | None = None) -> str:
    """``"scenario"`` or ``"lab"``: what a YAML file is.  A file that does not even load (unreadable, empty,
    not YAML, not a mapping) raises the error of what it is ``assume``d to be (default: sniffed from its
    text: a line ``lab: ...`` means a scenario)."""
    try:
        doc = load_marked(path)
    except TopologyError as exc:
        raise _as(assume or _sniff(path), exc.problems) from None
    if not isinstance(doc.data, dict):
        kind = assume or _sniff(path)
        what = "lab:, duration:, traffic: ..." if kind == "scenario" else "name:, isps:, sites: ..."
        raise _as(kind, [doc.problem((), f"the top level must be a mapping ({what}), not a "
                                         f"{type(doc.data).__name__}")])
    return "scenario" if looks_like_scenario(doc.data) else "lab"


def _sniff(path: str | Path) -> str:
    try:
        head = Path(path).read_bytes()[:65536].decode("utf-8", "replace")
    except OSError:
        return "lab"
    return "scenario" if any(line.startswith("lab:") for line in head.splitlines()) else "lab"


def _as(kind: str, problems: list[Problem]) -> TopologyError:
    return ScenarioError(problems) if kind == "scenario" else TopologyError(problems)


def load_scenario(path: str | Path, text: str | None = None) -> LoadedScenario:
    """Read and validate a scenario file; raises :class:`ScenarioError` listing every problem."""
    try:
        doc = load_marked(path, text)
    except TopologyError as exc:  # unreadable, empty, not YAML: still a scenario the user meant
        raise ScenarioError(exc.problems) from None
    return parse_scenario(doc, Path(path).resolve().parent)


def parse_scenario(doc: MarkedDoc, base_dir: Path) -> LoadedScenario:
    """Validate already-loaded YAML data (``MarkedDoc(data, file)`` works for a dict built in Python)."""
    if not isinstance(doc.data, dict):
        raise ScenarioError([Problem("the top level must be a mapping (lab:, duration:, traffic: ...), not a "
                                     f"{type(doc.data).__name__}", doc.file, doc.line_of(()))])
    try:
        scenario = Scenario.model_validate(doc.data)
    except ValidationError as exc:
        raise ScenarioError([_pydantic_problem(doc, err) for err in exc.errors()]) from None
    problems = [doc.problem(path, msg) for path, msg in cross_problems(scenario)]
    if problems:
        raise ScenarioError(problems)
    return LoadedScenario(scenario, doc, base_dir)


def _pydantic_problem(doc: MarkedDoc, err: Any) -> Problem:
    path, label = _data_path(doc.data, err["loc"])
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        key = err["loc"][-1] if err["loc"] else None
        message = unknown_field(Scenario, tuple(err["loc"]))
        if key in RENAMED and "did you mean" not in message:
            message += f"; did you mean {RENAMED[key]!r}? (durations are *_ms, periodic senders say interval_ms)"
    elif err["type"] == "union_tag_invalid":
        tags = [t.strip(" '") for t in str(err.get("ctx", {}).get("expected_tags", "")).split(",")]
        tag = err.get("ctx", {}).get("tag")
        message = f"unknown kind {tag!r}{did_you_mean(tag, tags)} (kinds: {', '.join(tags)})"
    return Problem(message, doc.file, doc.line_of(path), label)


def _data_path(data: Any, loc: tuple[Any, ...]) -> tuple[Path_, str]:
    """The part of a pydantic ``loc`` that exists in the YAML data (union tags dropped), and a field label
    that also names a missing key at the end."""
    path: list[Any] = []
    cur = data
    for part in loc:
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
            cur = cur[part]
        else:
            continue
        path.append(part)
    label = path[:]
    last = loc[-1] if loc else None
    if isinstance(last, str) and last not in path and last.isidentifier() and not _is_tag(last):
        label.append(last)
    return tuple(path), ".".join(str(p) for p in label)


def _is_tag(part: str) -> bool:
    return part in FLOW_KINDS or part in FAULT_KINDS or part in ("str", "int", "float", "tuple", "list", "dict")


def cross_problems(s: Scenario) -> Iterator[tuple[Path_, str]]:
    """References and times that pydantic cannot check field by field."""
    yield from _duplicates("traffic", [f.name for f in s.traffic])
    yield from _duplicates("faults", [f.name for f in s.faults])
    for i, flow in enumerate(s.traffic):
        end = flow.stop if flow.stop is not None else s.duration
        if flow.start >= end or end > s.duration:
            yield ("traffic", i, "stop" if flow.stop else "start"), \
                f"the flow must run within 0..{s.duration:g} s (start {flow.start:g}, stop {end:g})"
    for i, fault in enumerate(s.faults):
        if fault.at > s.duration:
            yield ("faults", i, "at"), f"{fault.at:g} s is after the end of the scenario ({s.duration:g} s)"
        if fault.until is not None:
            if not fault.undoable:
                yield ("faults", i, "until"), f"{fault.kind} has no undo; remove until"  # type: ignore[attr-defined]
            elif fault.until <= fault.at or fault.until > s.duration:
                yield ("faults", i, "until"), f"until must be after at ({fault.at:g}) and within {s.duration:g} s"
    flows: dict[str, Any] = {}
    faults: dict[str, Any] = {}
    for flow in s.traffic:
        flows.setdefault(flow.name, flow)  # with duplicate names, the first one counts
    for fault in s.faults:
        faults.setdefault(fault.name, fault)
    for i, exp in enumerate(s.expect):
        flow = flows.get(exp.flow)
        if flow is None:
            yield ("expect", i, "flow"), f"no flow named {exp.flow!r} (flows: {', '.join(flows) or 'none'})"
        elif flow.kind not in METRIC_KINDS[exp.metric]:
            kinds = ", ".join(sorted(METRIC_KINDS[exp.metric]))
            yield ("expect", i, exp.metric), f"{exp.metric} is not measured for {flow.kind} flows (only {kinds})"
        if exp.metric == "failover_ms" and not s.faults:
            yield ("expect", i, exp.metric), "failover_ms needs a fault to measure from"
        for side in ("after", "before"):
            ref = getattr(exp.bound, side)
            if isinstance(ref, str):
                yield from _time_ref_problems(("expect", i, exp.metric, side), ref, faults)


def _time_ref_problems(path: Path_, ref: str, faults: dict[str, Any]) -> Iterator[tuple[Path_, str]]:
    parsed = parse_time_ref(ref, faults)
    assert parsed is not None  # the model's pattern already matched
    fault = faults.get(parsed.fault)
    if fault is None:
        yield path, f"no fault named {parsed.fault!r} (faults: {', '.join(faults) or 'none'})"
    elif parsed.end and fault.until is None:
        yield path, f"{parsed.fault}.end: that fault has no until"


def _duplicates(section: str, names: list[str]) -> Iterator[tuple[Path_, str]]:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            yield (section, i, "name"), f"duplicate name {name!r}"
        seen.add(name)


def reference_problems(loaded: LoadedScenario, nodes: Collection[str], isps: Collection[str],
                       links: Collection[str] = (), lab_kind: str = MULTIHOMING) -> list[Problem]:
    """Names in the scenario that the lab does not have, and flows whose kind does not run on a lab of
    ``lab_kind`` (call once the topology is known; fault kinds are checked by ``testbed.faults.prepare``).

    ``links`` are link names; a link given as a node pair is checked only for its two nodes."""
    s, out = loaded.scenario, []
    shown = sorted(n for n in nodes if ":" not in n)

    def check(path: Path_, kind: str, name: str, known: Collection[str]) -> None:
        if name not in known:
            listed = sorted(known) if kind != "node" else shown
            out.append(loaded.doc.problem(path, f"no {kind} named {name!r} in the lab{did_you_mean(name, listed)} "
                                                f"({kind}s: {', '.join(listed) or 'none'})"))

    for i, flow in enumerate(s.traffic):
        fk = flow_kind(flow)
        if lab_kind not in fk.lab_kinds:
            out.append(loaded.doc.problem(("traffic", i, "kind"), f"{fk.name} flows do not run on {lab_kind} "
                                                                  f"labs (only on {', '.join(sorted(fk.lab_kinds))})"))
            continue
        check(("traffic", i, "from"), "node", flow.from_, nodes)
        if fk.to_is_node:
            check(("traffic", i, "to"), "node", flow.to, nodes)
        for side in ("src", "dst"):
            sel = getattr(flow, side)
            if sel is not None and not isinstance(sel, str):
                check(("traffic", i, side, "isp"), "ISP", sel.isp, isps)
    for i, fault in enumerate(s.faults):
        for attr, kind, known in (("node", "node", nodes), ("isp", "ISP", isps)):
            if isinstance(getattr(fault, attr, None), str):
                check(("faults", i, attr), kind, getattr(fault, attr), known)
        link = getattr(fault, "link", None)
        if isinstance(link, tuple):
            for end in link:
                check(("faults", i, "link"), "node", end, nodes)
        elif isinstance(link, str) and links:
            check(("faults", i, "link"), "link", link, links)
    return out
