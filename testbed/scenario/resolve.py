"""A scenario resolved against its lab without running anything: what ``mhlab run --dry-run`` prints and
what ``mhlab run`` checks before it deploys.

Resolving means: every name the scenario uses exists in the lab; every flow kind runs on the lab's kind
and its addresses resolve; every fault kind applies to the lab's kind and its handler accepts it (links,
ISPs, routers); every expectation's window names a fault.  All problems come back at once as
``file:line: field: message`` (a :class:`ScenarioError`), before a single namespace exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import LabError, MhlabError, Problem, ScenarioError
from ..faults import FaultError, prepare
from ..netplan import NetPlan
from .contract import lab_kind
from .flows import FlowPlan, plan_flows
from .load import LoadedScenario, reference_problems


class PlannedLab:
    """A lab that is only planned: its NetPlan, and no node to run anything in (fault handlers resolve
    names on ``.net``/``.topology`` and touch nodes only when their Action runs, which never happens)."""

    def __init__(self, net: NetPlan, name: str | None = None) -> None:
        self.net = net
        self.name = name or getattr(net.topology, "name", "lab")
        self.nodes: dict[str, Any] = {}

    @property
    def topology(self) -> Any:
        return self.net.topology

    @property
    def plan(self) -> Any:
        return self.net.plan

    def node(self, name: str) -> Any:
        raise LabError(f"lab {self.name} is only planned: nothing runs in {name}")

    __getitem__ = node


@dataclass(frozen=True)
class Resolved:
    """What the run would do: flows with their resolved ends and agents, faults as their handlers
    describe them, expectations as text."""

    lab: str
    lab_kind: str
    flows: tuple[FlowPlan, ...]
    faults: tuple[tuple[str, float, float | None, str], ...]  # name, at, until, what
    expectations: tuple[str, ...]

    def text(self) -> str:
        out = [f"lab {self.lab} ({self.lab_kind})", "traffic:"]
        for p in self.flows:
            out.append(f"  {p.name:<12} {p.kind:<7} {p.client.node} {p.src} -> "
                       f"{p.server.node if p.server else '-'} {p.dst}  from t={p.start:g} s")
        out.append("faults:" if self.faults else "faults: none")
        for name, at, until, what in self.faults:
            span = f"t={at:g} s" + (f" until {until:g} s" if until is not None else "")
            out.append(f"  {name:<12} {span:<18} {what}")
        out.append("expect:" if self.expectations else "expect: none")
        out += [f"  {e}" for e in self.expectations]
        return "\n".join(out)


def lab_names(lab: Any) -> tuple[set[str], set[str], set[str]]:
    """(nodes, address spaces a selector may name, link names) of a running or planned lab."""
    isps = {i.name for i in getattr(lab.topology, "isps", [])}
    spaces = isps | ({"pi"} if getattr(lab.plan, "pi_prefixes", None) else set())  # {isp: pi}
    return set(lab.net.nodes), spaces, {l.segment for l in lab.net.links}


def resolve(loaded: LoadedScenario, lab: Any, *, check_kernel: bool = False,
            log_dir: Path = Path("logs")) -> tuple[Resolved, list[Any]]:
    """Resolve ``loaded`` against ``lab`` (a running Lab or a :class:`PlannedLab`): (what would run, the
    prepared fault Actions).  Raises ScenarioError listing every problem."""
    doc, s = loaded.doc, loaded.scenario
    kind = lab_kind(lab.topology)
    nodes, spaces, links = lab_names(lab)
    problems: list[Problem] = list(reference_problems(loaded, nodes, spaces, links, kind))
    actions, refused = [], []
    for i, fault in enumerate(s.faults):
        try:
            actions.append(prepare(fault, lab, check_kernel=check_kernel))
        except FaultError as exc:
            refused.append(doc.problem(("faults", i), str(exc)))
            problems = [p for p in problems if not p.field.startswith(f"faults.{i}.")]  # said once, by the kind
    problems += refused
    plans: list[FlowPlan] = []
    if not problems:
        try:
            plans = plan_flows(s, lab.plan.addresses, log_dir, lab_model=lab.topology)
        except MhlabError as exc:
            i = getattr(exc, "index", None)
            problems.append(doc.problem(("traffic", i) if i is not None else ("traffic",), str(exc)))
    if problems:
        raise ScenarioError(problems)
    faults = tuple((f.name, f.at, f.until, a.describe) for f, a in zip(s.faults, actions))
    resolved = Resolved(lab.name, kind, tuple(plans), faults, tuple(e.describe() for e in s.expect))
    return resolved, actions
