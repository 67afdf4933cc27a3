"""The shim's headline on real kernels: an unmodified TCP connection between two multihomed sites survives the
failure of the ISP it was using (access link down, or the ISP's upstream cut), because the shim agents move
it to another locator pair and the eBPF data path translates every packet.  Hosts without a shim (srv) are
untouched."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testbed import faults
from testbed.checks import http_get
from testbed.scenario.model import LinkDown
from testbed.pytest_plugin import deploy_for_test

pytestmark = pytest.mark.lab
TOPOLOGY = "topologies/two-sites-shim.yaml"


@pytest.fixture
def fresh_lab(request):
    """A new lab per scenario: a context that already moved to ISP A2 would hide the next failure."""
    lab = deploy_for_test(Path(request.config.rootpath) / TOPOLOGY, request.config, name="tshimf")
    yield lab
    lab.destroy()


def _flow(result, name):
    return next(f for f in result.flows if f.name == name)


@pytest.mark.parametrize("scenario_file", ["scenarios/shim-link-down.yaml", "scenarios/shim-upstream-cut.yaml",
                                           "scenarios/shim-upstream-cut-silent.yaml",
                                           "scenarios/shim-silent.yaml"])
def test_established_tcp_survives_isp_a1_failure(fresh_lab, scenario, scenario_file):
    result = scenario(fresh_lab, scenario_file)
    est = _flow(result, "est")
    print(f"{scenario_file}: gap {est.max_gap_ms:.0f} ms, failover {est.failovers[0].failover_ms} ms")
    assert result.passed, [v for v in result.verdicts if not v.passed]
    assert est.connections_opened == 1 and est.connections_broken == 0
    assert est.delivered > 900  # records kept arriving on the same connection after the switch


def test_hosts_without_shim_keep_working(fresh_lab):
    lab = fresh_lab
    for isp in ("ispa1", "ispa2"):
        ok, detail = http_get(lab, "hA", lab.plan.address("hA", isp), lab.plan.address("srv"))
        assert ok, detail


def test_double_failure_leaves_one_pair_and_the_connection_uses_it(fresh_lab, scenario):
    lab = fresh_lab
    result = scenario(lab, "scenarios/shim-double-failure.yaml")
    assert result.passed, [v for v in result.verdicts if not v.passed]
    res = lab["hA"].run([str(Path(sys.executable).parent / "shimctl"), "--socket", str(lab["hA"].dir / "shim.sock"),
                         "contexts", "--json"])
    ctx = next(c for c in json.loads(res.stdout) if c["peer_ulid"] == lab.plan.address("hB", "ispb1"))
    print(json.dumps(ctx["datapath"]))
    assert ctx["datapath"]["translated"]
    used = json.dumps(ctx["datapath"])
    assert lab.plan.address("hA", "ispa2") in used and lab.plan.address("hB", "ispb2") in used


def test_shim_and_mptcp_side_by_side_under_one_fault(request, scenario):
    """One lab, one fault, a shim connection (hA -> hB) and an MPTCP one (mA -> mB)."""
    lab = deploy_for_test(Path(request.config.rootpath) / "topologies/two-sites-shim-mptcp.yaml", request.config,
                          name="tshimmp")
    try:
        result = scenario(lab, "scenarios/shim-vs-mptcp-link-down.yaml")
    finally:
        lab.destroy()
    shim, mptcp = _flow(result, "shim"), _flow(result, "mptcp")
    print(f"side by side: shim failover {shim.failovers[0].failover_ms} ms, MPTCP {mptcp.failovers[0].failover_ms} ms")
    assert result.passed, [v for v in result.verdicts if not v.passed]
    for flow in (shim, mptcp):
        assert flow.connections_opened == 1 and flow.connections_broken == 0 and flow.delivered > 900


def test_iperf3_bulk_keeps_going_through_the_cut(fresh_lab):
    """Scenario 1 with iperf3: a bulk TCP transfer between the ULIDs crosses ISP A1's failure on one connection."""
    lab = fresh_lab
    a1, b1 = lab.plan.address("hA", "ispa1"), lab.plan.address("hB", "ispb1")
    client = lab["hA"].popen(["iperf3", "-c", b1, "-B", a1, "-t", "9", "-i", "0.5", "-J"], name="iperf3-client",
                             stdout=subprocess.PIPE)
    time.sleep(3.0)
    cut = faults.prepare(LinkDown(kind="link-down", link="ispa1-ra1", at=0), lab)
    cut.do()
    out, _ = client.communicate(timeout=30)
    report = json.loads(out)
    assert "error" not in report, report.get("error")
    rates = [i["sum"]["bits_per_second"] / 1e9 for i in report["intervals"]]
    print("iperf3 Gb/s per 0.5 s:", " ".join(f"{r:.2f}" for r in rates))
    assert min(rates[:5]) > 0.1  # before the cut
    assert sum(r > 0.1 for r in rates[-8:]) >= 6, rates  # the last 4 s, on the same connection, after the switch
    assert report["end"]["sum_received"]["bytes"] > 0
