"""``kind: i2p``: a private network of real i2pd routers hosting one multihomed Destination (I2P Proposal
140).  Deploy bootstraps the network (a NetPlan hook) and waits for the Destination's LeaseSet; `mhlab
check` asks every router and the Destination's processes: i2pd running, tunnels built on every hosting
router, a LeaseSet published with their leases, and a client's SAM request answered end to end."""

from __future__ import annotations

import time

from ..checks import Check
from ..i2p import faults
from ..i2p.analysis import read_requests
from ..i2p.bootstrap import DESTINATION_TIMEOUT, bootstrap_hook, current_record, destination_pending
from ..i2p.netplan import build_i2p_netplan, destination_b32
from ..i2p.observe import published_routers, reachable_statuses
from ..i2p.topology import I2pLab, parse_i2p
from ..netplan import NetPlan
from ..procs import is_alive
from ..wait import WaitTimeout, wait_until
from .contract import Condition, LabKind, RunningLab, Section

PROBE_TIMEOUT = 60.0  # a client's first request: SAM session, tunnels, LeaseSet lookup (2-22 s measured)


def netplan(model: I2pLab) -> NetPlan:
    net = build_i2p_netplan(model)
    net.hooks.append(bootstrap_hook(model))
    return net


def readiness(net: NetPlan) -> tuple[Condition, ...]:
    return (Condition("the Destination's LeaseSet",
                      lambda lab: destination_pending(lab, lab.net.topology), DESTINATION_TIMEOUT, interval=1.0),)


def _hosting(model: I2pLab) -> list[str]:
    return [r for r, role in model.routers() if role == "hosting"]


def _offered(lab: RunningLab, model: I2pLab) -> dict[str, int]:
    """Hosting router -> inbound tunnels (leases) its Destination session offers; absent when down."""
    out: dict[str, int] = {}
    for status in reachable_statuses(lab, model):
        for router, state in status["routers"].items():
            if state["up"]:
                out[router] = max(out.get(router, 0), len(state["leases"]))
    return out


def probe_check(lab: RunningLab, model: I2pLab, client: str, timeout: float = PROBE_TIMEOUT) -> Check:
    """A SAM request/reply from ``client`` to the Destination: the whole path, tunnels and LeaseSet lookup."""
    name = f"SAM request from {client} answered"
    log = lab.node(client).dir / f"check-probe-{time.time():.0f}.jsonl"  # in the run directory
    proc = faults.start_probe(lab, model, log, client=client, every_ms=1000, timeout_s=8,
                              duration_s=timeout + 10, name="check-probe")
    try:
        ok = wait_until(lambda: [r for r in read_requests(log) if r.ok], timeout, 0.5,
                        what=name, ignore=(OSError,))
        return Check(name, True, f"reply after {ok[0].rtt_ms:.0f} ms")
    except WaitTimeout as exc:
        sent = len(read_requests(log)) if log.exists() else 0
        return Check(name, False, f"no reply within {timeout:g} s ({sent} requests timed out; {exc.last!r})"[:200])
    finally:
        proc.terminate()
        proc.wait(10)


def checks(lab: RunningLab) -> list[Check]:
    model: I2pLab = lab.net.topology
    out = []
    for router, _ in model.routers():
        alive = is_alive(current_record(lab, router, "i2pd"))
        out.append(Check(f"i2pd on {router} running", alive, "running" if alive else "not running"))
    offered = _offered(lab, model)
    for router in _hosting(model):
        n = offered.get(router, 0)
        out.append(Check(f"tunnels built on {router}", n > 0,
                         f"{n} inbound tunnels offered" if router in offered else "Destination session down"))
    published = published_routers(lab, model)
    pending = destination_pending(lab, model)
    out.append(Check("LeaseSet published", not pending,
                     f"leases of {', '.join(sorted(published)) or 'no router'}" + (f"; {pending[0]}" if pending else "")))
    for client in (r for r, role in model.routers() if role == "client"):
        out.append(probe_check(lab, model, client))
    return out


def inspect(lab: RunningLab) -> list[Section]:
    model: I2pLab = lab.net.topology
    offered, published = _offered(lab, model), published_routers(lab, model)
    rows = tuple((r, (f"session up, {offered[r]} leases offered" if r in offered else "session down")
                  + (", in the published LeaseSet" if r in published else "")) for r in _hosting(model))
    current = [len((s.get("current") or {}).get("leases", [])) for s in reachable_statuses(lab, model)]
    head = (("address", destination_b32(model)), ("mode", model.mode),
            ("published leases", ", ".join(map(str, current)) or "none"))
    return [Section("I2P Destination", head), Section("hosting routers", rows)]


KIND = LabKind(
    name="i2p",
    summary="a private network of real i2pd routers hosting one multihomed Destination (Proposal 140)",
    model=I2pLab,
    parse=parse_i2p,
    netplan=netplan,
    readiness=readiness,
    checks=checks,
    inspect=inspect,
)
