"""The continuity lab (``topologies/i2p-continuity.yaml``) on real i2pd: hosting routers that refuse
transit tunnels, and a balancer that crashes and starts again while the frontends keep their sessions.

2 floodfills, 2 hosting routers with ``--notransit``, 3 client routers, balancer with the primary policy.
First: no hosting router carries a transit tunnel while the others do (so a hosting router's crash cannot
take a client's own tunnel with it), and every client is answered.  Then the balancer process is killed:
the frontends keep their I2CP sessions and requests are still answered; restarted, the balancer hears both
routers again from the frontends and publishes a LeaseSet of its own.  About 2-3 minutes (slow).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from agents.balancer.control import query_status
from testbed.i2p import faults, observe
from testbed.i2p.analysis import read_requests
from testbed.i2p.bootstrap import current_record, respawn, stop_records
from testbed.i2p.netplan import BALANCER_NODE
from testbed.i2p.topology import I2pLab
from testbed.kinds.i2p import probe_check
from testbed.lab import Lab
from testbed.procs import is_alive
from testbed.pytest_plugin import wait_until

pytestmark = [
    pytest.mark.lab, pytest.mark.slow,
    pytest.mark.skipif(shutil.which("i2pd") is None, reason="i2pd is not installed"),
    pytest.mark.mhlab_topology("topologies/i2p-continuity.yaml", name="i2ctl", seed="ci-continuity"),
]
TRANSIT = b"TransitTunnel: "  # i2pd 2.45.1 logs one such line (info) per transit tunnel it joins


def transit_lines(lab: Lab, node: str) -> int:
    return (lab.node(node).dir / "i2pd.log").read_bytes().count(TRANSIT)


def test_hosting_routers_carry_no_transit_tunnels_and_clients_are_answered(lab: Lab) -> None:
    model: I2pLab = lab.topology
    assert not model.hosting_transit
    others = [n for n, role in model.routers() if role != "hosting"]
    wait_until(lambda: sum(transit_lines(lab, n) >= 1 for n in others) >= 3, 90, 1.0,
               what="transit tunnels on the non-hosting routers")
    for client in ("c1", "c2", "c3"):
        check = probe_check(lab, model, client)
        assert check.ok, check
    assert {n: transit_lines(lab, n) for n in ("r1", "r2")} == {"r1": 0, "r2": 0}


def test_a_balancer_crash_and_restart_leaves_the_sessions_up(lab: Lab, tmp_path: Path) -> None:
    model: I2pLab = lab.topology
    fronts = {r: str(lab.node(r).dir / "frontend.sock") for r in ("r1", "r2")}
    log = tmp_path / "probe.jsonl"
    proc = faults.start_probe(lab, model, log, client="c2", every_ms=500, timeout_s=5, duration_s=120)
    try:
        observe.wait_answered(log, since=0, count=5, timeout=90)
        sessions = {r: query_status(p)["sessions"] for r, p in fronts.items()}  # (the bootstrap restarts i2pd)
        record = current_record(lab, BALANCER_NODE, "balancer")
        stop_records([record], grace=0.5)
        crashed_at = time.time()
        assert not is_alive(record)
        time.sleep(15)  # longer than i2pd's 10 s for answering a lease request
        assert all(query_status(path)["up"] for path in fronts.values())  # the sessions stayed up
        away = [r for r in read_requests(log) if crashed_at <= r.sent < crashed_at + 10]
        assert away and all(r.ok for r in away), away  # and requests are still answered
        respawn(lab, record)
        wait_until(lambda: all(query_status(p)["balancer_links"] == 2 for p in fronts.values()), 30, 0.5,
                   what="both frontends linked to the restarted balancer", ignore=(OSError,))
        control = str(lab.node(BALANCER_NODE).dir / "control.sock")
        status = wait_until(lambda: s if (s := query_status(control)).get("current") else None, 60, 1.0,
                            what="a LeaseSet from the restarted balancer", ignore=(OSError,))
        assert {r for r, s in status["routers"].items() if s["up"]} == {"r1", "r2"}
        assert {r: query_status(p)["sessions"] for r, p in fronts.items()} == sessions  # no new I2CP session
        restarted_at = time.time()
        observe.wait_answered(log, since=restarted_at, count=5, timeout=30)
    finally:
        proc.terminate()
        proc.wait(10)
