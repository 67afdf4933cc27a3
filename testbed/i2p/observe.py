"""Reading a running I2P lab: which hosting router carries the client's requests, whose leases are in the
published LeaseSet, and whether the probe is being answered - polled with bounds, never slept blindly."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from agents.balancer.control import query_status

from .analysis import read_requests
from ..wait import wait_until
from .bootstrap import destination_controls
from .netplan import BALANCER_NODE
from .topology import I2pLab


def backend_counts(lab: Any, model: I2pLab) -> dict[str, int]:
    """Requests the echo backend(s) received, per hosting router."""
    if model.mode == "balancer":
        return dict(query_status(str(lab.node(BALANCER_NODE).dir / "backend-control.sock"))["received"])
    counts: dict[str, int] = {}
    for status in reachable_statuses(lab, model):
        counts.update(status["backend"]["received"])
    return counts


def reachable_statuses(lab: Any, model: I2pLab) -> list[dict[str, Any]]:
    """Status of every Destination process that answers (in naive mode a crashed one does not)."""
    out = []
    for path in destination_controls(lab, model).values():
        try:
            out.append(query_status(path))
        except OSError:
            continue
    return out


def carrier(lab: Any, model: I2pLab, over: float = 4.0) -> str | None:
    """The hosting router that received the most requests during the next ``over`` seconds."""
    before = backend_counts(lab, model)
    time.sleep(over)
    after = backend_counts(lab, model)
    delta = {r: n - before.get(r, 0) for r, n in after.items()}
    best = max(delta.items(), key=lambda kv: kv[1], default=(None, 0))
    return best[0] if best[1] > 0 else None


def published_routers(lab: Any, model: I2pLab) -> set[str]:
    """Hosting routers with at least one lease in a published LeaseSet (the balancer's, or their own)."""
    found: set[str] = set()
    for status in reachable_statuses(lab, model):
        current = {(x["gateway"], x["tunnel_id"]) for x in (status.get("current") or {}).get("leases", [])}
        for router, state in status["routers"].items():
            if state["up"] and current & {(x["gateway"], x["tunnel_id"]) for x in state["leases"]}:
                found.add(router)
    return found


def offering_routers(lab: Any, model: I2pLab) -> set[str]:
    """Hosting routers whose Destination session is up and has offered inbound leases."""
    return {router for status in reachable_statuses(lab, model)
            for router, state in status["routers"].items() if state["up"] and state["leases"]}


def rejoined(lab: Any, model: I2pLab, router: str) -> bool:
    """A restored router is back in service: its leases are published (fair share, naive) or, with the
    ``primary`` policy, offered to the balancer as a standby."""
    if model.mode == "balancer" and model.balancer.policy == "primary":
        return router in offering_routers(lab, model)
    return router in published_routers(lab, model)


def consecutive_ok(log: Path, since: float) -> int:
    """Answered requests sent after ``since`` with no failure after them."""
    run = 0
    for r in read_requests(log):
        if r.sent >= since:
            run = run + 1 if r.ok else 0
    return run


def wait_answered(log: Path, since: float, count: int, timeout: float) -> float:
    """Wait until ``count`` requests in a row, sent after ``since``, were answered; returns when."""
    wait_until(lambda: consecutive_ok(log, since), timeout, 0.5, ok=lambda run: run >= count,
               what=f"{count} answered requests in a row in {log.name}", ignore=(OSError,))
    return time.time()
