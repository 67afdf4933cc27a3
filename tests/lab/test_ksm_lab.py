"""A lab deployed with KSM: every FRR daemon is mergeable and runs without address randomisation, ksmd
merges their pages while BGP and the data plane stay up, and destroying the lab puts ksmd's settings back."""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed.checks import ping
from testbed.hostrecord import RecordLock, originals
from testbed.ksm import WANT, HostKsm, KsmOptions, process_stat
from testbed.lab import Lab
from testbed.wait import wait_until

pytestmark = pytest.mark.lab
TOPO = Path(__file__).resolve().parents[2] / "topologies" / "two-isp-site.yaml"
ADDR_NO_RANDOMIZE = 0x0040000
FRR = ("zebra", "bgpd", "bfdd", "staticd")


def _settings(host: HostKsm) -> dict[str, int]:
    return {name: host.read(name) for name in WANT}


def test_frr_daemons_are_mergeable_and_destroy_restores_ksm():
    host = HostKsm()
    if not host.available():
        pytest.skip("this kernel has no KSM")
    held_before = originals(host.record)  # another lab holds KSM: these are the host's values before it
    before = _settings(host)
    lab = Lab.deploy(TOPO, name="mmksm1", ksm=KsmOptions())
    try:
        daemons = [r for r in lab.rundir.procs() if r.name in FRR]
        assert daemons
        for rec in daemons:
            assert process_stat(rec.pid).get("ksm_merge_any") == "yes", (rec.node, rec.name)
            personality = int(Path(f"/proc/{rec.pid}/personality").read_text(), 16)
            assert personality & ADDR_NO_RANDOMIZE, (rec.node, rec.name, hex(personality))
            assert Path(f"/proc/{rec.pid}/comm").read_text().strip() == rec.name  # the wrapper exec'd it
        assert host.read("run") == 1 and host.read("pages_to_scan") >= WANT["pages_to_scan"]
        # ksmd finds the routers' identical pages (a full scan of ten daemons takes well under a second)
        wait_until(lambda: sum(int(process_stat(r.pid).get("ksm_merging_pages", 0)) for r in daemons), 60, 0.5,
                   what="ksmd merging the FRR daemons' pages", ok=lambda pages: pages > 100)
        sessions = lab.bgp_sessions()
        assert all(state == "Established" for peers in sessions.values() for state in peers.values()), sessions
        assert ping(lab, "h1", lab.plan.address("h1", "ispa"), lab.plan.address("srv"))
    finally:
        lab.destroy()
    # other labs on the host may come and go meanwhile: what is right depends on who holds KSM now
    with RecordLock(host.record) as lock:
        held_after, after = bool(lock.state["holders"]), _settings(host)
    if held_after:
        assert after["run"] == 1  # still held by another lab
    else:  # the last holder out put back the host's values (the first holder's originals, if one was in)
        assert after == {**before, **{k: v for k, v in held_before.items() if k in WANT}}, held_before


def test_a_budget_paces_the_frr_start_and_the_lab_stays_under_it():
    """With --ksm-budget the routers start in batches measured against the host's MemAvailable; the default
    lab (6 routers, ~100 MB) fits a 2 GB budget in one batch, and the deploy says how long it waited."""
    host = HostKsm()
    if not host.available():
        pytest.skip("this kernel has no KSM")
    lab = Lab.deploy(TOPO, name="mmksm2", ksm=KsmOptions(budget_gb=2))
    try:
        assert lab.timings["FRR waiting for ksmd"] < 1  # nothing to wait for: it fits at once
        assert lab.timings["FRR waiting for ksmd"] <= lab.timings["start FRR"]
        daemons = [r for r in lab.rundir.procs() if r.name in FRR]
        assert {r.name for r in daemons} >= {"zebra", "bgpd"}
        assert all(process_stat(r.pid).get("ksm_merge_any") == "yes" for r in daemons)
        sessions = lab.bgp_sessions()
        assert all(state == "Established" for peers in sessions.values() for state in peers.values()), sessions
    finally:
        lab.destroy()
