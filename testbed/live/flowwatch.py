"""Flows seen live: deliveries per second and gaps, read from the traffic agents' JSON-lines logs as they grow.

The agents (agents/traffic) log every delivery: a tcpseq/udpcbr server one ``rec`` per record, a probe client
one ``probe`` per attempt, a ping client one ``reply`` per echo.  :class:`FlowWatch` tails those logs from a
directory - the one of flows started from the web page (``<run dir>/live/flows``), or a scenario's
``<report>/logs`` - and keeps per-second counts, the current silence and the longest gap, like a scenario
report's timeline but while it happens.  :func:`start_tcpseq` starts such a flow on a running lab.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..lab import Lab
from ..rundir import JournalTail
from ..scenario.flows import FlowPlan, Traffic, plan_flows
from ..scenario.model import Scenario

WINDOW_S = 90  # seconds of per-second counts kept for the chart
LIVE_FLOW_SECONDS = 3600.0  # a flow started from the page runs this long unless stopped


def _delivery(role: str, ev: dict[str, Any]) -> bool:
    kind = ev.get("ev")
    if role == "server":
        return kind == "rec"
    return (kind == "probe" and bool(ev.get("ok"))) or (kind == "reply" and not ev.get("dup"))


@dataclass
class FlowStats:
    """One flow's live figures."""

    name: str
    delivered: int = 0
    last: float | None = None
    max_gap: float = 0.0
    broken: int = 0
    connections: int = 0
    per_second: dict[int, int] = field(default_factory=dict)
    first: float | None = None
    src: str = ""
    dst: str = ""

    def add(self, t: float) -> None:
        if self.last is not None and t - self.last > self.max_gap:
            self.max_gap = t - self.last
        self.last = t if self.last is None else max(self.last, t)
        self.first = t if self.first is None else min(self.first, t)
        self.delivered += 1
        second = int(t)
        self.per_second[second] = self.per_second.get(second, 0) + 1

    def view(self, now: float) -> dict[str, Any]:
        """JSON for the page: totals, the current silence, and counts for the last WINDOW_S seconds."""
        end = int(now)
        for s in [s for s in self.per_second if s < end - WINDOW_S]:
            del self.per_second[s]
        gap_now = now - self.last if self.last is not None else None
        return {"name": self.name, "delivered": self.delivered, "src": self.src, "dst": self.dst,
                "silent_s": None if gap_now is None else round(gap_now, 3),
                "max_gap_s": round(max(self.max_gap, gap_now or 0.0), 3), "broken": self.broken,
                "connections": self.connections, "window_end": end,
                "first_delivery": self.first,
                "per_second": [self.per_second.get(s, 0) for s in range(end - WINDOW_S, end)]}


class FlowWatch:
    """Every flow whose logs appear in ``directories`` (searched again on each poll)."""

    def __init__(self, directories: list[Path]) -> None:
        self.directories = directories
        self.tails: dict[Path, JournalTail] = {}
        self.flows: dict[str, FlowStats] = {}

    def poll(self, now: float | None = None) -> list[dict[str, Any]]:
        for d in self.directories:
            for path in sorted(d.glob("**/*.jsonl")):
                name, _, role = path.name.removesuffix(".jsonl").rpartition(".")
                if role not in ("server", "client") or not name:
                    continue
                tail = self.tails.setdefault(path, JournalTail(path))
                stats = self.flows.setdefault(name, FlowStats(name))
                for ev in tail.new():
                    if _delivery(role, ev):
                        stats.add(float(ev["t"]))
                    elif role == "client" and ev.get("ev") == "connect":
                        stats.connections += 1
                        stats.src, stats.dst = ev.get("local", stats.src), ev.get("remote", stats.dst)
                    elif role == "client" and ev.get("ev") == "broken":
                        stats.broken += 1
        now = now or time.time()
        return [s.view(now) for s in self.flows.values()]


@dataclass
class LiveFlows:
    """tcpseq flows started by hand on a running lab; their logs go to ``<run dir>/live/flows``."""

    lab: Lab
    traffic: list[Traffic] = field(default_factory=list)
    log_dir: Path = Path()

    def __post_init__(self) -> None:
        # one folder per session: a flow name (tcp1...) never continues an older session's log
        self.log_dir = self.lab.rundir.path / "live" / "flows" / time.strftime("%Y%m%d-%H%M%S")

    def start_tcpseq(self, src_node: str, dst_node: str, src: str | None = None, dst: str | None = None) -> FlowPlan:
        """A long-lived tcpseq stream ``src_node -> dst_node`` (addresses default to each node's first);
        returns once the server listens and the client is started."""
        n = len(self.traffic) + 1
        flow: dict[str, Any] = {"kind": "tcpseq", "name": f"tcp{n}", "from": src_node, "to": dst_node}
        if src:
            flow["src"] = src
        if dst:
            flow["dst"] = dst
        scenario = Scenario.model_validate({"lab": self.lab.name, "duration": LIVE_FLOW_SECONDS, "traffic": [flow]})
        # a port no other session of this lab is likely to hold (servers outlive a killed `serve`)
        port = random.randint(20000, 40000)
        plan = plan_flows(scenario, self.lab.plan.addresses, self.log_dir, base_port=port)[0]
        traffic = Traffic(self.lab, [plan])
        traffic.start_servers()
        traffic.start_client(plan)
        self.traffic.append(traffic)
        return plan

    def stop(self) -> None:
        for t in self.traffic:
            t.stop()
        self.traffic.clear()
