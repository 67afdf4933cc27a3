"""Faults and client traffic for I2P labs, on the lab's records (never by name).

``crash`` stops a hosting router's i2pd (the whole router) or only the process holding the Destination's
I2CP session (the router lives on, the Destination's tunnels there go); ``restore`` starts the very same
command line again.  ``start_probe`` runs the SAM request/reply probe on a client router as a recorded
process.  The same pieces are the scenario language's I2P kinds: fault kinds ``i2p-router-crash``,
``i2cp-session-loss`` and ``balancer-crash`` (:data:`FAULT_KINDS`) and the flow kind ``sam``
(:data:`SAM_FLOW`), so an I2P scenario file runs under ``mhlab run`` like any other.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Literal

from agents.balancer.structures import i2p_b64encode

from ..procs import ProcRecord
from ..scenario.contract import I2P, Action, Endpoints, Events, FaultError, FaultKind, FlowError, FlowKind
from ..scenario.measures import Attempt, Delivery
from ..scenario.model import BalancerCrash, I2cpSessionLoss, I2pRouterCrash, SamFlow
from .bootstrap import current_record, respawn, stop_records
from .netplan import BALANCER_NODE, SAM_PORT
from .observe import carrier
from .topology import I2pLab

Target = Literal["router", "session"]
CARRIER = "carrier"
CARRIER_SAMPLE_S = 2.0  # how long `router: carrier` watches the echo backend before the crash


def process_name(model: I2pLab, target: Target) -> str:
    """What to stop on a hosting router: i2pd, or the process owning the Destination's I2CP session."""
    if target == "session":
        return "frontend" if model.mode == "balancer" else "destination"
    return "i2pd"


def crash(lab: Any, model: I2pLab, router: str, target: Target = "router") -> ProcRecord:
    rec = current_record(lab, router, process_name(model, target))
    stop_records([rec], grace=0.5)  # a crash: SIGTERM, SIGKILL after 0.5 s
    return rec


def restore(lab: Any, record: ProcRecord) -> ProcRecord:
    return respawn(lab, record)


def destination_b64(model: I2pLab) -> str:
    return i2p_b64encode(model.destination_keys().destination.to_bytes())


def start_probe(lab: Any, model: I2pLab, log: Path, client: str = "c1", every_ms: float = 500,
                timeout_s: float = 8.0, duration_s: float | None = None, renew_after: int = 0,
                spare: bool = False, name: str = "probe") -> subprocess.Popen:
    """The SAM probe on ``client`` (recorded; ``destroy`` stops it if the caller does not)."""
    argv = [sys.executable, "-m", "agents.balancer.probe", "--dest", destination_b64(model),
            "--every", str(every_ms), "--timeout", str(timeout_s), "--log", str(log),
            "--renew-after", str(renew_after)] + (["--spare"] if spare else [])
    if duration_s is not None:
        argv += ["--duration", str(duration_s)]
    return lab.node(client).spawn(name, argv, cwd=Path(__file__).resolve().parents[2])


# ---------------------------------------------------------------- fault kinds

def _model(lab: Any) -> I2pLab:
    model = lab.topology
    if not isinstance(model, I2pLab):
        raise FaultError(f"lab {lab.name} is not an I2P lab")
    return model


def _hosting(model: I2pLab, router: str) -> str:
    hosting = [name for name, role in model.routers() if role == "hosting"]
    if router != CARRIER and router not in hosting:
        raise FaultError(f"{router!r} is not a hosting router of lab {model.name} "
                         f"(hosting: {', '.join(hosting)}, or {CARRIER})")
    return router


def _crash_action(lab: Any, fault: Any, target: Target, what: str) -> Action:
    model = _model(lab)
    router = _hosting(model, fault.router)
    records: list[ProcRecord] = []

    def apply() -> None:
        victim = router
        if victim == CARRIER:
            victim = carrier(lab, model, over=CARRIER_SAMPLE_S) or next(n for n, r in model.routers()
                                                                         if r == "hosting")
            action.describe = f"{victim} (the carrier): {what}"  # the report names the router that died
        records.append(crash(lab, model, victim, target))

    def undo() -> None:
        while records:
            restore(lab, records.pop())
    action = Action(fault.name, f"{router}: {what}", apply, undo)
    return action


def _router_crash(fault: I2pRouterCrash, lab: Any) -> Action:
    return _crash_action(lab, fault, "router", "i2pd dies (router crash)")


def _session_loss(fault: I2cpSessionLoss, lab: Any) -> Action:
    return _crash_action(lab, fault, "session", "the Destination's I2CP session dies")


def _balancer_crash(fault: BalancerCrash, lab: Any) -> Action:
    model = _model(lab)
    if model.mode != "balancer":
        raise FaultError(f"lab {model.name} runs in {model.mode} mode: it has no balancer to crash")
    records: list[ProcRecord] = []

    def apply() -> None:
        rec = current_record(lab, BALANCER_NODE, "balancer")
        stop_records([rec], grace=0.5)
        records.append(rec)

    def undo() -> None:
        while records:
            restore(lab, records.pop())
    return Action(fault.name, "the balancer dies", apply, undo)


FAULT_KINDS = (
    FaultKind(I2pRouterCrash, _router_crash, frozenset({I2P})),
    FaultKind(I2cpSessionLoss, _session_loss, frozenset({I2P})),
    FaultKind(BalancerCrash, _balancer_crash, frozenset({I2P})),
)


# ---------------------------------------------------------------- the SAM flow kind

def _sam_resolve(flow: SamFlow, model: Any, _addresses: Any) -> tuple[str, str]:
    """src: the client router's SAM bridge; dst: the Destination (full base64)."""
    if not isinstance(model, I2pLab):
        raise FlowError("sam flows need an I2P lab")
    return f"127.0.0.1:{SAM_PORT}", destination_b64(model)


def _sam_client(flow: SamFlow, ends: Endpoints) -> list[str]:
    return ["agents.balancer.probe", "--dest", ends.dst, "--sam", ends.src, "--every", f"{flow.interval_ms:g}",
            "--timeout", f"{flow.timeout_ms / 1000:g}", "--renew-after", str(flow.renew_after)] + \
        (["--spare"] if flow.spare else [])


def _sam_parse(client: Events, _server: Events) -> dict[str, Any]:
    requests = sorted((e for e in client if e.get("ev") == "request"), key=lambda e: e["sent"])
    attempts = tuple(Attempt(e["sent"], bool(e["ok"]), e.get("rtt_ms"), None if e["ok"] else "no answer")
                     for e in requests)
    deliveries = [Delivery(e["sent"] + e["rtt_ms"] / 1000, e["seq"], e["sent"], rtt_ms=e["rtt_ms"])
                  for e in requests if e["ok"] and e.get("rtt_ms") is not None]
    stop = [e for e in client if e.get("ev") == "stop"]
    last = int(stop[-1]["sent"]) if stop and "sent" in stop[-1] else max((e["seq"] for e in requests), default=0)
    return {"attempts": attempts, "deliveries": deliveries, "send_marks": tuple((e["seq"], e["sent"]) for e in requests),
            "seqs_sent": (1, last + 1), "errors": tuple((e["sent"], "no answer") for e in requests if not e["ok"])}


SAM_FLOW = FlowKind(SamFlow, _sam_client, _sam_parse,
                    metrics=frozenset({"max_gap_ms", "failover_ms", "delivered", "loss", "answered", "rtt_ms"}),
                    resolve=_sam_resolve, lab_kinds=frozenset({I2P}), to_is_node=False)
