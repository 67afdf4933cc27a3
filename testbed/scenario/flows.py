"""Scenario flows -> agent command lines on nodes, and agent logs -> :class:`FlowTrace` for analysis.

This is the only module that knows both the scenario model and the agents' command lines and log
events.  The run loop uses :class:`Traffic`: start the servers (and wait until they listen), start each
client at its flow's start time, stop everything at the end, then read the traces.  Nodes are reached
only through ``lab.node(name).popen(argv, stdout=..., stderr=...)``.
"""

from __future__ import annotations

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
from .measures import Attempt, Connection, Delivery, FlowTrace
from .model import IspAddress, PingFlow, ProbeFlow, Scenario, TcpSeqFlow, UdpCbrFlow

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


def resolve_address(selector: str | IspAddress | None, node: str, addresses: Mapping[str, Sequence[str]]) -> str:
    """A literal address as is; ``{isp: X}`` -> the node's address from ISP X; None -> the node's first."""
    if isinstance(selector, str):
        return selector
    if selector is None:
        for addrs in addresses.values():
            if addrs:
                return addrs[0]
        raise LabError(f"node {node} has no addresses to send from or to")
    addrs = addresses.get(selector.isp, ())
    if selector.index >= len(addrs):
        known = ", ".join(f"{isp}: {len(a)}" for isp, a in addresses.items()) or "none"
        raise LabError(f"node {node} has no address #{selector.index} from ISP {selector.isp} (it has {known})")
    return addrs[selector.index]


def plan_flows(scenario: Scenario, addresses_of: AddressesOf, log_dir: Path, *, python: str = sys.executable,
               base_port: int = 5000) -> list[FlowPlan]:
    """Build every flow's agent commands.  Ports default to ``base_port + flow index`` (unique per run)."""
    plans = []
    for i, flow in enumerate(scenario.traffic):
        src = resolve_address(flow.src, flow.from_, addresses_of(flow.from_))
        dst = resolve_address(flow.dst, flow.to, addresses_of(flow.to))
        port = getattr(flow, "port", None) or base_port + i
        run_for = (flow.stop if flow.stop is not None else scenario.duration) - flow.start
        common = ["--flow", flow.name]
        client_args, server_args = _agent_args(flow, src, dst, port)

        def command(role: str, node: str, module_args: list[str], duration: float) -> AgentCommand:
            log = log_dir / f"{flow.name}.{role}.jsonl"
            argv = ["env", f"PYTHONPATH={AGENTS_ROOT}", python, "-m", *module_args, *common,
                    "--log", str(log), "--duration", f"{duration:g}"]
            return AgentCommand(flow.name, role, node, tuple(argv), log)

        client = command("client", flow.from_, client_args, run_for)
        server = (command("server", flow.to, server_args, scenario.duration + SERVER_MARGIN_S)
                  if server_args else None)
        plans.append(FlowPlan(flow.name, flow.kind, flow.start, src, dst, client, server))
    return plans


def _agent_args(flow: Any, src: str, dst: str, port: int) -> tuple[list[str], list[str] | None]:
    """(client module+args, server module+args) for one flow kind."""
    if isinstance(flow, TcpSeqFlow):
        client = ["agents.traffic.tcpseq", "send", "--dst", dst, "--port", str(port), "--src", src,
                  "--interval", f"{flow.interval_ms:g}", "--size", str(flow.size),
                  "--connect-timeout", f"{flow.connect_timeout:g}"]
        client += ["--reconnect"] if flow.reconnect else []
        client += ["--mptcp"] if flow.mptcp else []
        client += ["--user-timeout", str(flow.user_timeout_ms)] if flow.user_timeout_ms else []
        return client, ["agents.traffic.tcpseq", "recv", "--bind", dst, "--port", str(port)] + \
            (["--mptcp"] if flow.mptcp else [])
    if isinstance(flow, UdpCbrFlow):
        client = ["agents.traffic.udpcbr", "send", "--dst", dst, "--port", str(port), "--src", src,
                  "--rate", f"{flow.rate_pps:g}", "--size", str(flow.size)]
        return client, ["agents.traffic.udpcbr", "recv", "--bind", dst, "--port", str(port)]
    if isinstance(flow, ProbeFlow):
        host = f"[{dst}]" if ":" in dst else dst
        client = ["agents.traffic.probe", "curl", "--url", f"http://{host}:{port}{flow.path}", "--src", src,
                  "--every", f"{flow.every_ms:g}", "--connect-timeout", f"{flow.connect_timeout:g}",
                  "--max-time", f"{flow.max_time:g}"]
        return client, ["agents.traffic.probe", "serve", "--bind", dst, "--port", str(port)]
    if isinstance(flow, PingFlow):
        return ["agents.traffic.ping", "run", "--dst", dst, "--src", src, "--interval", f"{flow.interval_ms:g}",
                "--timeout", f"{flow.timeout:g}"], None
    raise TypeError(f"unknown flow kind {flow!r}")


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
        deadline = time.monotonic() + timeout
        for cmd in servers:
            while not any(e.get("ev") == "listen" for e in read_events(cmd.log)):
                proc = next(p for c, p in self.procs if c is cmd)
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = cmd.log.with_suffix(".stderr")
                    detail = err.read_text().strip()[-500:] if err.exists() else ""
                    raise LabError(f"flow {cmd.flow}: server on {cmd.node} did not start listening: {detail}")
                time.sleep(0.02)

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
    parse = {"tcpseq": _tcpseq, "udpcbr": _udpcbr, "probe": _probe, "ping": _ping}[kind]
    started = next((e["t"] for e in client if e["ev"] == "start"), None)
    fields = parse(client, server)
    fields["deliveries"] = tuple(sorted(fields.get("deliveries", ()), key=lambda d: d.t))
    return FlowTrace(name, kind, started=started, src=src, dst=dst, **fields)


def _of(events: list[dict[str, Any]], *names: str) -> list[dict[str, Any]]:
    return [e for e in events if e.get("ev") in names]


def _sent_range(client: list[dict[str, Any]], deliveries: Sequence[Delivery], first: int) -> tuple[int, int]:
    """[first, next unused seq): from the sender's stop event, else from what was seen (a killed sender)."""
    stop = _of(client, "stop")
    if stop and "sent" in stop[-1]:
        return first, first + int(stop[-1]["sent"])
    seen = [e["seq"] for e in _of(client, "mark")] + [d.seq + 1 for d in deliveries if d.seq is not None]
    return first, max(seen, default=first)


def _error_text(e: dict[str, Any]) -> str:
    return str(e.get("error") or e.get("message") or "error")


def _tcpseq(client: list[dict[str, Any]], server: list[dict[str, Any]]) -> dict[str, Any]:
    deliveries = [Delivery(e["t"], e["seq"], e.get("ts"), e.get("conn")) for e in _of(server, "rec")]
    attempts = [Attempt(e.get("started", e["t"]), e["ev"] == "connect", e.get("connect_ms"),
                        None if e["ev"] == "connect" else _error_text(e))
                for e in _of(client, "connect", "connect_error")]
    ends = {e["conn"]: e for e in _of(client, "broken", "close")}
    connections = []
    for e in _of(client, "connect"):
        end = ends.get(e["conn"])
        broken = _error_text(end) if end and end["ev"] == "broken" else None
        connections.append(Connection(e["conn"], e["t"], end["t"] if end else None, broken))
    marks = [(e["seq"], e["t"]) for e in _of(client, "mark")] + [(d.seq, d.sent) for d in deliveries if d.sent]
    errors = [(e["t"], _error_text(e)) for e in _of(client, "broken", "connect_error")]
    return {"deliveries": deliveries, "attempts": tuple(attempts), "connections": tuple(connections),
            "send_marks": tuple(marks), "seqs_sent": _sent_range(client, deliveries, 0), "errors": tuple(errors)}


def _udpcbr(client: list[dict[str, Any]], server: list[dict[str, Any]]) -> dict[str, Any]:
    deliveries = [Delivery(e["t"], e["seq"], e.get("ts")) for e in _of(server, "rec")]
    marks = [(e["seq"], e["t"]) for e in _of(client, "mark")] + [(d.seq, d.sent) for d in deliveries if d.sent]
    errors = [(e["t"], _error_text(e)) for e in _of(client, "error")]
    return {"deliveries": deliveries, "send_marks": tuple(marks), "errors": tuple(errors),
            "seqs_sent": _sent_range(client, deliveries, 0)}


def _probe(client: list[dict[str, Any]], _server: list[dict[str, Any]]) -> dict[str, Any]:
    probes = _of(client, "probe")
    return {
        "attempts": tuple(Attempt(e["started"], bool(e["ok"]), e.get("connect_ms"), e.get("error")) for e in probes),
        "deliveries": [Delivery(e["t"], e["n"]) for e in probes if e["ok"]],
        "errors": tuple((e["t"], str(e["error"])) for e in probes if not e["ok"]),
    }


def _ping(client: list[dict[str, Any]], _server: list[dict[str, Any]]) -> dict[str, Any]:
    replies = [e for e in _of(client, "reply") if not e.get("dup")]
    deliveries = [Delivery(e["t"], e["seq"], e["t"] - e["rtt_ms"] / 1000, rtt_ms=e["rtt_ms"]) for e in replies]
    stop = _of(client, "stop")
    transmitted = stop[-1].get("transmitted") if stop else None
    seen = [e["seq"] for e in _of(client, "reply", "timeout", "icmp_error")]
    last = transmitted if transmitted is not None else max(seen, default=0)
    marks = [(d.seq, d.sent) for d in deliveries]
    start = next((e["t"] for e in client if e["ev"] == "exec"), None)
    interval = stop[-1].get("interval_ms") if stop else None
    if start is not None and interval:
        marks += [(1, start), (max(last, 1), start + (max(last, 1) - 1) * interval / 1000)]
    errors = [(e["t"], _error_text(e)) for e in _of(client, "icmp_error")]
    return {"deliveries": deliveries, "send_marks": tuple(marks), "seqs_sent": (1, last + 1), "errors": tuple(errors)}
