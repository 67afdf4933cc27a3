"""Baselines 1 and 2 (no shim yet) on real kernels: the thesis's problems, measured.

The scenario files in scenarios/ are run on one lab; the test asserts what they measured, and checks the
BGP and filter state during an upstream cut (the failure local link monitoring misses)."""

from pathlib import Path

import pytest

from testbed.checks import http_get, ping
from testbed.faults import prepare
from testbed.scenario.load import load_scenario
from testbed.scenario.model import UpstreamCut
from testbed.scenario.run import run_scenario

pytestmark = [pytest.mark.lab, pytest.mark.mhlab_topology("topologies/two-isp-site.yaml", name="tbase")]
TOPO = Path(__file__).resolve().parents[2] / "topologies"
SCEN = TOPO.parent / "scenarios"


def _flow(result, name):
    return next(f for f in result.flows if f.name == name)


def test_access_link_down_breaks_the_isp_a_flow(lab, tmp_path):
    outcome = run_scenario(SCEN / "baseline-link-down.yaml", tmp_path, lab=lab)
    result = outcome.result
    assert result.passed, [v for v in result.verdicts if not v.passed]
    est = _flow(result, "est_a")
    assert est.connections_broken == 1 and est.delivered > 100
    assert _flow(result, "new_from_b").attempts_ok == _flow(result, "new_from_b").attempts_total > 10
    assert (tmp_path / "report.json").stat().st_size > 0
    # the fault was undone: the link is back and ISP A works again
    assert ping(lab, "h1", lab.plan.address("h1", "ispa"), lab.plan.address("srv"), count=3)


def test_upstream_cut_keeps_site_bgp_up_but_kills_traffic(lab):
    fault = load_scenario(SCEN / "baseline-upstream-cut.yaml").scenario.faults[0]
    action = prepare(fault, lab)
    src_a, src_b, dst = lab.plan.address("h1", "ispa"), lab.plan.address("h1", "ispb"), lab.plan.address("srv")
    action.do()
    try:
        sessions = lab.bgp_sessions()
        assert sessions["ra"]["ispa"] == "Established"  # nothing local shows the failure
        assert sessions["ispa"]["core"] != "Established"
        default = lab.vtysh_json("ra", "show bgp ipv6 unicast ::/0 json")
        assert default.get("paths"), "ispa stopped sending the default route"
        assert not ping(lab, "h1", src_a, dst, count=2, wait=0.5)
        assert http_get(lab, "h1", src_b, dst)[0]
        assert lab.nft_counter("ispb", "ingress_rb") == 0  # nothing from the site was misrouted
    finally:
        action.revert()


def test_upstream_cut_scenario(lab, scenario):
    result = scenario(lab, "scenarios/baseline-upstream-cut.yaml")
    assert result.passed, [v for v in result.verdicts if not v.passed]
    assert _flow(result, "est_a").connections_broken == 1


@pytest.mark.parametrize("icmp", [True, False])
def test_upstream_cut_answers_with_icmp_or_drops_silently(lab, icmp):
    """``icmp: true`` (the default): ISP A's router says "no route"; ``icmp: false``: it says nothing."""
    action = prepare(UpstreamCut(kind="upstream-cut", isp="ispa", icmp=icmp, at=0, name=f"cut{int(icmp)}"), lab)
    src, dst = lab.plan.address("h1", "ispa"), lab.plan.address("srv")
    action.do()
    try:
        out = lab["h1"].run(["ping", "-6", "-n", "-c", "3", "-i", "0.3", "-W", "1", "-I", src, dst]).stdout
    finally:
        action.revert()
    assert " 0 received" in out, out
    assert ("unreachable" in out.lower()) == icmp, out
    assert ping(lab, "h1", src, dst, count=3)  # undone: the table is gone and the upstream back
