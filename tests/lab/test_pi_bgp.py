"""Baseline 3 on real kernels: PI multihoming (pi-bgp) with hold 3 s and BFD, ISP A failing under a flow.

The PI prefix reaches the transit core through both ISPs (one more global route: the cost PA avoids);
when ISP A's access link silently stops passing packets, BFD drops the sessions, BGP reconverges and the
established TCP flow from h1's PI address survives with a sub-second gap.  ISP A going down outright is
seen at once.  FRR's default timers on a silent failure take minutes: experiments/pi_failover.py only."""

from pathlib import Path

import pytest

from testbed.checks import bfd_peers, routing_settled
from testbed.pytest_plugin import wait_json, wait_until
from testbed.scenario.run import run_scenario

pytestmark = [pytest.mark.lab, pytest.mark.mhlab_topology("topologies/two-isp-site-pi-bfd.yaml", name="tpi")]
TOPO = Path(__file__).resolve().parents[2] / "topologies"
SCEN = TOPO.parent / "scenarios"
PI = "2001:db8:ff00::/48"


def _flow(result, name):
    return next(f for f in result.flows if f.name == name)


def _converged(lab) -> bool:
    return routing_settled(lab, "core", PI, paths=2)


def test_pi_prefix_reaches_core_through_both_isps(lab):
    wait_until(lambda: _converged(lab), timeout=15, what="PI prefix at core via ispa and ispb")
    table = lab.vtysh_json("core", "show bgp ipv6 unicast json")["routes"]
    aggregates = {str(p) for p in lab.plan.aggregates.values()}
    assert set(table) == aggregates | {PI}  # exactly one more route than under PA
    assert sorted(p["path"] for p in table[PI]) == ["65010 65100", "65020 65100"]
    # ra falls back on rb's default (iBGP, next-hop-self) only when its own ISP's is gone
    wait_json(lab, "ra", "show bgp ipv6 unicast ::/0 json", {"paths": [{}, {}]})
    assert list(bfd_peers(lab, "ra").values()) == ["up", "up"]  # BFD watches both of ra's sessions


def test_silent_access_failure_bfd_keeps_the_flow(lab, tmp_path):
    wait_until(lambda: _converged(lab), timeout=15, what="converged lab")
    result = run_scenario(SCEN / "baseline-pi-silent.yaml", tmp_path, lab=lab).result
    assert result.passed, [v for v in result.verdicts if not v.passed]
    est, rt = _flow(result, "est"), _flow(result, "rt")
    assert est.src == lab.plan.address("h1", "pi") and est.connections_broken == 0 and est.connections_opened == 1
    # the fault really cut the path (BFD needs 3 x 100 ms to notice), and BGP repaired it within a second
    assert 250 < rt.failovers[0].failover_ms < 1500
    assert 250 < est.failovers[0].failover_ms < 3000
    assert lab.nft_counter("ispb", "ingress_rb") == 0  # the PI source passes ISP B's ingress filter


def test_isp_down_keeps_the_flow(lab, tmp_path):
    wait_until(lambda: _converged(lab), timeout=20, what="lab converged again after the silent failure")
    result = run_scenario(SCEN / "baseline-pi-isp-down.yaml", tmp_path, lab=lab).result
    assert result.passed, [v for v in result.verdicts if not v.passed]
    est = _flow(result, "est")
    assert est.connections_broken == 0 and est.failovers[0].failover_ms < 1000
    wait_until(lambda: _converged(lab), timeout=20, what="lab converged after ispa came back")
