"""Runtime steps of an I2P lab after the services started (the i2p lab kind runs them).

1. Bootstrap with no network (docs/i2p-proposal-140.md), a NetPlan hook: every i2pd has written its ``router.info`` on
   its first start (the service's ready file); stop them exactly by their records, zip the router infos
   as a reseed file, and start each again with the very same command line (its i2pd.conf points at the zip).
2. Readiness: the multihomed Destination has a LeaseSet with leases from every hosting router.
Both are awaited within bounds by the deploy, which fails with what is missing.
"""

from __future__ import annotations

from typing import Any

from agents.balancer.control import query_status

from ..errors import LabError
from ..netplan import Hook
from ..procs import ProcRecord, is_alive, stop_all
from ..wait import wait_until
from .netplan import BALANCER_NODE
from .reseed import reseed_zip
from .topology import I2pLab

ROUTER_INFO_TIMEOUT = 30.0
DESTINATION_TIMEOUT = 150.0
STOP_GRACE = 10.0  # i2pd exits within a few seconds of SIGTERM (SIGINT would wait for transit tunnels)


def current_record(lab: Any, node: str, name: str) -> ProcRecord:
    """The latest recorded process ``name`` of ``node`` (a restarted daemon has several records)."""
    recs = [r for r in lab.rundir.procs() if r.node == node and r.name == name]
    if not recs:
        raise LabError(f"lab {lab.name}: {node} has no recorded process {name!r}")
    return recs[-1]


def stop_records(records: list[ProcRecord], grace: float = STOP_GRACE) -> None:
    """Stop exactly these processes (PID + start time), never by name."""
    left = stop_all({r.pid: r.start for r in records if is_alive(r)}, grace=grace)
    if left:
        raise LabError(f"processes {left} would not stop")


def respawn(lab: Any, record: ProcRecord) -> ProcRecord:
    """Start a recorded process again in its node with the same command line; returns the new record."""
    handle = lab.node(record.node)
    handle.spawn(record.name, list(record.argv), cwd=handle.dir)
    return current_record(lab, record.node, record.name)


def bootstrap(lab: Any, model: I2pLab) -> None:
    routers = [name for name, _ in model.routers()]
    infos = {r: lab.node(r).dir / "router.info" for r in routers}
    wait_until(lambda: [r for r, p in infos.items() if not p.exists()], ROUTER_INFO_TIMEOUT, 0.5,
               what="every router writing router.info", ok=lambda missing: not missing)
    records = [current_record(lab, r, "i2pd") for r in routers]
    stop_records(records)  # stopped first: a router rewrites its router.info while it runs
    archive = reseed_zip({r: p.read_bytes() for r, p in infos.items()})
    for r in routers:
        (lab.node(r).dir / "reseed.zip").write_bytes(archive)
    for rec in records:
        respawn(lab, rec)


def destination_controls(lab: Any, model: I2pLab) -> dict[str, str]:
    """Control sockets that report the Destination's LeaseSet: the balancer's, or each naive router's."""
    if model.mode == "balancer":
        return {BALANCER_NODE: str(lab.node(BALANCER_NODE).dir / "control.sock")}
    return {r: str(lab.node(r).dir / "control.sock") for r, role in model.routers() if role == "hosting"}


def destination_ready(lab: Any, model: I2pLab) -> bool:
    """Every hosting router has leases, and the current LeaseSet(s) hold at least one of each (with the
    ``primary`` policy: at least one of the primary's; the others are standbys)."""
    published: set[tuple[str, int]] = set()
    offered: dict[str, set[tuple[str, int]]] = {}
    for status in (query_status(path) for path in destination_controls(lab, model).values()):
        current = status.get("current") or {}
        published |= {(x["gateway"], x["tunnel_id"]) for x in current.get("leases", [])}
        for name, router in status["routers"].items():
            offered[name] = {(x["gateway"], x["tunnel_id"]) for x in router["leases"]} if router["up"] else set()
    hosting = [r for r, role in model.routers() if role == "hosting"]
    if model.mode == "balancer" and model.balancer.policy == "primary":
        return all(offered.get(r) for r in hosting) and any(offered[r] & published for r in hosting)
    return all(offered.get(r, set()) & published for r in hosting)


def destination_pending(lab: Any, model: I2pLab) -> list[str]:
    """What keeps the Destination from being ready (empty: ready), for deploy's readiness wait."""
    try:
        return [] if destination_ready(lab, model) else [
            f"the LeaseSet lacks leases of some of the {model.hosting} hosting routers"]
    except (OSError, ValueError, KeyError) as exc:  # a control socket not created yet
        return [f"control socket not answering: {exc!r}"]


def bootstrap_hook(model: I2pLab) -> Hook:
    return Hook("bootstrap the private I2P network (reseed zip, restart)", lambda lab: bootstrap(lab, model))
