"""The flow-kind table: per traffic kind, how its agents start in a node and how their logs are read.

Each entry is a :class:`~testbed.scenario.contract.FlowKind` keyed by its model class.  To add a kind:
write its model in :mod:`.model` (and add it to the ``Flow`` union), its agent under ``agents/``, and
one entry here (or in the module of the lab kind it belongs to, like the I2P SAM probe); the unit
test ``test_every_flow_model_has_a_kind`` fails until the entry exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ..i2p.faults import SAM_FLOW
from .connectflow import CONNECT_FLOW
from .contract import Endpoints, Events, FlowKind
from .measures import Attempt, Connection, Delivery
from .model import METRICS, PingFlow, ProbeFlow, TcpSeqFlow, UdpCbrFlow

COMMON = frozenset({"max_gap_ms", "failover_ms", "delivered"})


def of(events: Events, *names: str) -> Events:
    return [e for e in events if e.get("ev") in names]


def sent_range(client: Events, deliveries: list[Delivery], first: int) -> tuple[int, int]:
    """[first, next unused seq): from the sender's stop event, else from what was seen (a killed sender)."""
    stop = of(client, "stop")
    if stop and "sent" in stop[-1]:
        return first, first + int(stop[-1]["sent"])
    seen = [e["seq"] for e in of(client, "mark")] + [d.seq + 1 for d in deliveries if d.seq is not None]
    return first, max(seen, default=first)


def error_text(e: dict[str, Any]) -> str:
    return str(e.get("error") or e.get("message") or "error")


# ---------------------------------------------------------------- tcpseq

def _tcpseq_client(flow: TcpSeqFlow, ends: Endpoints) -> list[str]:
    argv = ["agents.traffic.tcpseq", "send", "--dst", ends.dst, "--port", str(ends.port), "--src", ends.src,
            "--interval-ms", f"{flow.interval_ms:g}", "--size", str(flow.size),
            "--connect-timeout-ms", f"{flow.connect_timeout_ms:g}"]
    argv += ["--reconnect"] if flow.reconnect else []
    argv += ["--mptcp"] if flow.mptcp else []
    return argv + (["--user-timeout-ms", str(flow.user_timeout_ms)] if flow.user_timeout_ms else [])


def _tcpseq_server(flow: TcpSeqFlow, ends: Endpoints) -> list[str]:
    return ["agents.traffic.tcpseq", "recv", "--bind", ends.dst, "--port", str(ends.port)] + \
        (["--mptcp"] if flow.mptcp else [])


def _tcpseq_parse(client: Events, server: Events) -> dict[str, Any]:
    deliveries = [Delivery(e["t"], e["seq"], e.get("ts"), e.get("conn")) for e in of(server, "rec")]
    attempts = [Attempt(e.get("started", e["t"]), e["ev"] == "connect", e.get("connect_ms"),
                        None if e["ev"] == "connect" else error_text(e))
                for e in of(client, "connect", "connect_error")]
    ends = {e["conn"]: e for e in of(client, "broken", "close")}
    connections = []
    for e in of(client, "connect"):
        end = ends.get(e["conn"])
        broken = error_text(end) if end and end["ev"] == "broken" else None
        connections.append(Connection(e["conn"], e["t"], end["t"] if end else None, broken))
    marks = [(e["seq"], e["t"]) for e in of(client, "mark")] + [(d.seq, d.sent) for d in deliveries if d.sent]
    errors = [(e["t"], error_text(e)) for e in of(client, "broken", "connect_error")]
    return {"deliveries": deliveries, "attempts": tuple(attempts), "connections": tuple(connections),
            "send_marks": tuple(marks), "seqs_sent": sent_range(client, deliveries, 0), "errors": tuple(errors)}


# ---------------------------------------------------------------- udpcbr

def _udpcbr_client(flow: UdpCbrFlow, ends: Endpoints) -> list[str]:
    return ["agents.traffic.udpcbr", "send", "--dst", ends.dst, "--port", str(ends.port), "--src", ends.src,
            "--interval-ms", f"{flow.interval_s * 1000:g}", "--size", str(flow.size)]


def _udpcbr_server(_flow: UdpCbrFlow, ends: Endpoints) -> list[str]:
    return ["agents.traffic.udpcbr", "recv", "--bind", ends.dst, "--port", str(ends.port)]


def _udpcbr_parse(client: Events, server: Events) -> dict[str, Any]:
    deliveries = [Delivery(e["t"], e["seq"], e.get("ts")) for e in of(server, "rec")]
    marks = [(e["seq"], e["t"]) for e in of(client, "mark")] + [(d.seq, d.sent) for d in deliveries if d.sent]
    errors = [(e["t"], error_text(e)) for e in of(client, "error")]
    return {"deliveries": deliveries, "send_marks": tuple(marks), "errors": tuple(errors),
            "seqs_sent": sent_range(client, deliveries, 0)}


# ---------------------------------------------------------------- probe

def _probe_client(flow: ProbeFlow, ends: Endpoints) -> list[str]:
    host = f"[{ends.dst}]" if ":" in ends.dst else ends.dst
    return ["agents.traffic.probe", "curl", "--url", f"http://{host}:{ends.port}{flow.path}", "--src", ends.src,
            "--interval-ms", f"{flow.interval_ms:g}", "--connect-timeout-ms", f"{flow.connect_timeout_ms:g}",
            "--max-time-ms", f"{flow.max_time_ms:g}"]


def _probe_server(_flow: ProbeFlow, ends: Endpoints) -> list[str]:
    return ["agents.traffic.probe", "serve", "--bind", ends.dst, "--port", str(ends.port)]


def _probe_parse(client: Events, _server: Events) -> dict[str, Any]:
    probes = of(client, "probe")
    return {
        "attempts": tuple(Attempt(e["started"], bool(e["ok"]), e.get("connect_ms"), e.get("error")) for e in probes),
        "deliveries": [Delivery(e["t"], e["n"]) for e in probes if e["ok"]],
        "errors": tuple((e["t"], str(e["error"])) for e in probes if not e["ok"]),
    }


# ---------------------------------------------------------------- ping

def _ping_client(flow: PingFlow, ends: Endpoints) -> list[str]:
    return ["agents.traffic.ping", "run", "--dst", ends.dst, "--src", ends.src,
            "--interval-ms", f"{flow.interval_ms:g}", "--timeout-ms", f"{flow.timeout_ms:g}"]


def _ping_parse(client: Events, _server: Events) -> dict[str, Any]:
    replies = [e for e in of(client, "reply") if not e.get("dup")]
    deliveries = [Delivery(e["t"], e["seq"], e["t"] - e["rtt_ms"] / 1000, rtt_ms=e["rtt_ms"]) for e in replies]
    stop = of(client, "stop")
    transmitted = stop[-1].get("transmitted") if stop else None
    seen = [e["seq"] for e in of(client, "reply", "timeout", "icmp_error")]
    last = transmitted if transmitted is not None else max(seen, default=0)
    marks = [(d.seq, d.sent) for d in deliveries]
    start = next((e["t"] for e in client if e["ev"] == "exec"), None)
    interval = stop[-1].get("interval_ms") if stop else None
    if start is not None and interval:
        marks += [(1, start), (max(last, 1), start + (max(last, 1) - 1) * interval / 1000)]
    errors = [(e["t"], error_text(e)) for e in of(client, "icmp_error")]
    return {"deliveries": deliveries, "send_marks": tuple(marks), "seqs_sent": (1, last + 1), "errors": tuple(errors)}


FLOW_KINDS: Mapping[type, FlowKind] = MappingProxyType({k.model: k for k in (
    FlowKind(TcpSeqFlow, _tcpseq_client, _tcpseq_parse, server=_tcpseq_server,
             metrics=COMMON | {"loss", "new_connections_ok", "connect_ms", "connections_broken", "connection_kept"}),
    FlowKind(UdpCbrFlow, _udpcbr_client, _udpcbr_parse, server=_udpcbr_server,
             metrics=COMMON | {"loss", "reordering"}),
    FlowKind(ProbeFlow, _probe_client, _probe_parse, server=_probe_server,
             metrics=COMMON | {"new_connections_ok", "answered", "connect_ms"}),
    FlowKind(PingFlow, _ping_client, _ping_parse, metrics=COMMON | {"loss", "rtt_ms"}),
    CONNECT_FLOW,
    SAM_FLOW,
)})
BY_NAME: Mapping[str, FlowKind] = MappingProxyType({k.name: k for k in FLOW_KINDS.values()})

# metric -> names of the flow kinds that measure it
METRIC_KINDS: Mapping[str, frozenset[str]] = MappingProxyType(
    {m: frozenset(k.name for k in FLOW_KINDS.values() if m in k.metrics) for m in METRICS})


def flow_kind(flow: Any) -> FlowKind:
    """The table entry of a flow model object (or of a kind's name)."""
    kind = BY_NAME.get(flow) if isinstance(flow, str) else FLOW_KINDS.get(type(flow))
    if kind is None:
        raise LookupError(f"no flow kind for {flow!r}; kinds: {', '.join(BY_NAME)}")
    return kind

