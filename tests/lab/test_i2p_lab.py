"""Proposal 140 on a private network of real i2pd routers, through the lab engine.

One floodfill, two hosting routers behind the balancer (frontends in the routers' namespaces, balancer
and echo backend in their own node), one client router whose SAM bridge carries a steady request probe.
The hosting router that carries the requests is crashed (its i2pd, by its record): the balancer must
drop its leases and republish, and the client must be answered again - through the other router.
`mhlab check` passes on the healthy lab and names the dead router afterwards.  Every wait is bounded
(first connections on these routers take 2-22 s); the module takes ~3 minutes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from agents.balancer.control import query_status
from testbed.i2p import faults, observe
from testbed.i2p.analysis import read_requests
from testbed.i2p.reseed import identity_hash
from testbed.i2p.topology import I2pLab
from testbed.lab import Lab
from testbed.procs import is_alive
from testbed.pytest_plugin import wait_until

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(shutil.which("i2pd") is None, reason="i2pd is not installed"),
    pytest.mark.mhlab_topology("topologies/i2p-invisible-multihoming.yaml", name="ti2p", hosting=2, clients=1,
                               floodfills=1, seed="ci-destination", floodfill_loglevel=None),
]


@pytest.fixture(scope="module")
def model(lab: Lab) -> I2pLab:
    return lab.topology


def test_mhlab_check_and_inspect(lab: Lab) -> None:
    """`mhlab check` runs the i2p kind's checks (no multihoming attribute is read) and they pass on a
    healthy lab; `mhlab inspect` shows the Destination.  First in the module: the lab is still whole."""
    base = [sys.executable, "-m", "testbed.cli"]
    res = subprocess.run(base + ["check", lab.name, "--json"], capture_output=True, text=True, timeout=120)
    assert "Traceback" not in res.stderr, res.stderr
    checks = {c["name"]: c for c in json.loads(res.stdout)}
    assert res.returncode == 0, [c for c in checks.values() if not c["ok"]]
    assert {"i2pd on ff1 running", "tunnels built on r1", "tunnels built on r2", "LeaseSet published",
            "SAM request from c1 answered"} <= set(checks)
    res = subprocess.run(base + ["inspect", lab.name, "--json"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["kind"] == "i2p"
    hosting = next(s for s in data["details"] if s["title"] == "hosting routers")["rows"]
    assert set(hosting) == {"r1", "r2"} and all(v.startswith("session up") for v in hosting.values()), hosting


@pytest.fixture(scope="module")
def probe_log(lab: Lab, model: I2pLab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    log = tmp_path_factory.mktemp("i2p") / "probe.jsonl"
    # renew the SAM session after 6 losses in a row: an existing end-to-end (ratchet) session is state
    # inside the hosting router that died, so the client's application fails over by starting a new one
    proc = faults.start_probe(lab, model, log, every_ms=500, timeout_s=6, duration_s=170, renew_after=6)
    yield log
    if proc.poll() is None:
        proc.terminate()
        proc.wait(10)


def balancer_status(lab: Lab) -> dict:
    return query_status(str(lab.node("bal").dir / "control.sock"))


def test_one_leaseset_with_both_routers(lab: Lab, model: I2pLab) -> None:
    status = balancer_status(lab)
    assert {r for r, s in status["routers"].items() if s["up"]} == {"r1", "r2"}
    assert observe.published_routers(lab, model) == {"r1", "r2"}
    assert 1 <= len(status["current"]["leases"]) <= 16
    assert sum(s["publishing"] for s in status["routers"].values()) == 1  # one publisher, the other silent
    # each frontend told the balancer its router's identity (so tunnels through a dead one can be dropped)
    for name in ("r1", "r2"):
        info = (lab.node(name).dir / "router.info").read_bytes()
        assert status["routers"][name]["identity"] == identity_hash(info).hex()
    # nothing of the lab can leave: no default route anywhere, IPv4 only from 198.18.0.0/15
    for node in ("ff1", "r1", "r2", "c1"):
        assert lab.node(node).run(["ip", "-4", "route", "show", "default"], check=True).stdout.strip() == ""


def test_client_requests_are_answered(lab: Lab, model: I2pLab, probe_log: Path) -> None:
    observe.wait_answered(probe_log, since=0, count=5, timeout=90)
    ok = [r for r in read_requests(probe_log) if r.ok]
    assert ok and all(r.rtt_ms is not None and r.rtt_ms < 6000 for r in ok)
    assert sum(observe.backend_counts(lab, model).values()) >= 5


def test_service_continues_after_a_hosting_router_dies(lab: Lab, model: I2pLab, probe_log: Path) -> None:
    observe.wait_answered(probe_log, since=0, count=3, timeout=60)
    victim = observe.carrier(lab, model) or "r1"
    survivor = ({"r1", "r2"} - {victim}).pop()
    fault_at = time.time()
    record = faults.crash(lab, model, victim, "router")
    assert not is_alive(record)
    # the balancer drops the dead router's leases at once and republishes without them
    wait_until(lambda: not balancer_status(lab)["routers"][victim]["up"], 15, 0.5,
               what="the balancer dropping the dead router")
    wait_until(lambda: observe.published_routers(lab, model) == {survivor}, 40, 0.5,
               what="a LeaseSet without the dead router")
    # service continues: new requests are answered again, through the survivor
    before = observe.backend_counts(lab, model).get(survivor, 0)
    observe.wait_answered(probe_log, since=fault_at, count=5, timeout=100)
    assert observe.backend_counts(lab, model).get(survivor, 0) > before


def test_mhlab_check_reports_the_dead_router(lab: Lab, model: I2pLab) -> None:
    """The checks can fail: after the crash above, `mhlab check` names the dead router (exit 1)."""
    res = subprocess.run([sys.executable, "-m", "testbed.cli", "check", lab.name, "--json"],
                         capture_output=True, text=True, timeout=120)
    checks = {c["name"]: c for c in json.loads(res.stdout)}
    dead = [r for r in ("r1", "r2") if not checks[f"i2pd on {r} running"]["ok"]]
    assert res.returncode == 1 and len(dead) == 1, checks
    assert not checks[f"tunnels built on {dead[0]}"]["ok"]
    assert checks["i2pd on ff1 running"]["ok"] and checks["SAM request from c1 answered"]["ok"]
