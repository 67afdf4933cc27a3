"""Scenario flows -> agent command lines on nodes, and agent logs -> :class:`FlowTrace` for analysis.

What each kind's agents are and how their logs read is the kind's entry in :mod:`.flowkinds`; this
module runs them.  The run loop uses :class:`Traffic`: start the servers (and wait until they listen), start each
client at its flow's start time, stop everything at the end, then read the traces.  Nodes are reached
only through ``lab.node(name).popen(argv, stdout=..., stderr=...)``.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import agents

from ..errors import LabError
from ..wait import WaitTimeout, wait_until
from .contract import Endpoints, FlowError, lab_kind, resolve_address
from .flowkinds import flow_kind
from .measures import FlowTrace
from .model import Scenario

AGENTS_ROOT = Path(agents.__file__).resolve().parent.parent
SERVER_MARGIN_S = 5.0  # servers' own --duration outlives the scenario by this much (a safety net)
AddressesOf = Callable[[str], Mapping[str, Sequence[str]]]


class NodeHandle(Protocol):
    def popen(self, argv: list[str], **kwargs: Any) -> subprocess.Popen[Any]: ...


class LabHandle(Protocol):
    def node(self, name: str) -> NodeHandle: ...


@dataclass(frozen=True)
class AgentCommand:
    """One agent process to start on a node; ``log`` is its JSON-lines event log."""

    flow: str
    role: str  # "server" or "client"
    node: str
    argv: tuple[str, ...]
    log: Path


@dataclass(frozen=True)
class FlowPlan:
    """A flow with its addresses resolved and its agents' command lines built."""

    name: str
    kind: str
    start: float
    src: str
    dst: str
    client: AgentCommand
    server: AgentCommand | None  # ping needs none


def plan_flows(scenario: Scenario, addresses_of: AddressesOf, log_dir: Path, *, python: str = sys.executable,
               base_port: int = 5000, lab_model: Any = None) -> list[FlowPlan]:
    """Build every flow's agent commands.  Ports default to ``base_port + flow index`` (unique per run).
    ``lab_model`` is the lab's topology model (kinds that need more than addresses read it; its kind
    is checked against the flow kinds' lab kinds when given)."""
    plans = []
    for i, flow in enumerate(scenario.traffic):
        kind = flow_kind(flow)
        try:
            if lab_model is not None and lab_kind(lab_model) not in kind.lab_kinds:
                raise FlowError(f"{kind.name} flows do not run on {lab_kind(lab_model)} labs "
                                f"(only on {', '.join(sorted(kind.lab_kinds))} labs)")
            if kind.resolve is not None:
                src, dst = kind.resolve(flow, lab_model, addresses_of)
            else:
                src = resolve_address(flow.src, flow.from_, addresses_of(flow.from_))
                dst = resolve_address(flow.dst, flow.to, addresses_of(flow.to))
        except (LabError, FlowError) as exc:
            raise FlowError(f"flow {flow.name}: {exc}", index=i) from None
        ends = Endpoints(src, dst, getattr(flow, "port", None) or base_port + i, lab_model)
        run_for = (flow.stop if flow.stop is not None else scenario.duration) - flow.start
        common = ["--flow", flow.name]

        def command(role: str, node: str, module_args: list[str], duration: float) -> AgentCommand:
            log = log_dir / f"{flow.name}.{role}.jsonl"
            argv = ["env", f"PYTHONPATH={AGENTS_ROOT}", python, "-m", *module_args, *common,
                    "--log", str(log), "--duration", f"{duration:g}"]
            return AgentCommand(flow.name, role, node, tuple(argv), log)

        client = command("client", flow.from_, kind.client(flow, ends), run_for)
        server = (command("server", flow.to, kind.server(flow, ends), scenario.duration + SERVER_MARGIN_S)
                  if kind.server is not None else None)
        shown = dst if len(dst) <= 48 else f"{dst[:12]}...{dst[-8:]}"  # an I2P Destination is 516 characters
        plans.append(FlowPlan(flow.name, flow.kind, flow.start, src, shown, client, server))
    return plans


# ---------------------------------------------------------------- running agents through the lab

class Traffic:
    """The agent processes of one run (instance state only: the lab also records and cleans them up)."""

    def __init__(self, lab: LabHandle, plans: Sequence[FlowPlan]) -> None:
        self.lab, self.plans = lab, list(plans)
        self.procs: list[tuple[AgentCommand, subprocess.Popen[Any]]] = []

    def launch(self, cmd: AgentCommand) -> subprocess.Popen[Any]:
        cmd.log.parent.mkdir(parents=True, exist_ok=True)
        stderr = open(cmd.log.with_suffix(".stderr"), "w")
        proc = self.lab.node(cmd.node).popen(list(cmd.argv), stdout=subprocess.DEVNULL, stderr=stderr)
        stderr.close()  # the child holds its own copy
        self.procs.append((cmd, proc))
        return proc

    def start_servers(self, timeout: float = 10.0) -> None:
        """Start every flow's server and wait until each has logged ``listen`` (or raise LabError)."""
        servers = [p.server for p in self.plans if p.server is not None]
        for cmd in servers:
            self.launch(cmd)
        start = time.monotonic()
        for cmd in servers:
            proc = next(p for c, p in self.procs if c is cmd)

            def listening(cmd=cmd) -> bool:
                return any(e.get("ev") == "listen" for e in read_events(cmd.log))
            with contextlib.suppress(WaitTimeout):
                wait_until(lambda: listening() or proc.poll() is not None,
                           max(0.0, timeout - (time.monotonic() - start)), 0.02,
                           what=f"flow {cmd.flow}: server on {cmd.node} listening")
            if not listening():
                err = cmd.log.with_suffix(".stderr")
                detail = err.read_text().strip()[-500:] if err.exists() else ""
                raise LabError(f"flow {cmd.flow}: server on {cmd.node} did not start listening: {detail}")

    def start_client(self, plan: FlowPlan) -> subprocess.Popen[Any]:
        return self.launch(plan.client)

    def stop(self, drain: float = 0.5, timeout: float = 5.0) -> None:
        """SIGTERM the clients, give in-flight data ``drain`` seconds, then SIGTERM the servers; agents
        flush their logs on SIGTERM.  Anything still running after ``timeout`` is killed."""
        for role in ("client", "server"):
            procs = [p for c, p in self.procs if c.role == role and p.poll() is None]
            if role == "server" and procs:
                time.sleep(drain)
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    def traces(self) -> dict[str, FlowTrace]:
        return read_traces(self.plans)


# ---------------------------------------------------------------- agent logs -> traces

def read_events(path: Path) -> list[dict[str, Any]]:
    """The events of a JSON-lines log; a missing file is empty, a torn last line (killed agent) is skipped."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    events = []
    for line in lines:
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events


def read_traces(plans: Sequence[FlowPlan]) -> dict[str, FlowTrace]:
    """Every flow's trace from its logs (flows whose client never wrote a log are left out)."""
    out = {}
    for plan in plans:
        client = read_events(plan.client.log)
        if not client:
            continue
        server = read_events(plan.server.log) if plan.server else []
        out[plan.name] = trace_from_events(plan.name, plan.kind, client, server, plan.src, plan.dst)
    return out


def trace_from_events(name: str, kind: str, client: list[dict[str, Any]], server: list[dict[str, Any]],
                      src: str | None = None, dst: str | None = None) -> FlowTrace:
    """Turn one flow's client and server events into the neutral form analysis works on."""
    started = next((e["t"] for e in client if e["ev"] == "start"), None)
    fields = flow_kind(kind).parse(client, server)
    fields["deliveries"] = tuple(sorted(fields.get("deliveries", ()), key=lambda d: d.t))
    return FlowTrace(name, kind, started=started, src=src, dst=dst, **fields)
