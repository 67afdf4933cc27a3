"""sadr-bgp and sadr-igp on real daemons (BIRD 2, babeld, FRR at the ISPs): every source address of the
campus host reaches srv through its own ISP - counted at each ISP's ingress - and when ISP B's access link
fails the host's ISP-B packets are answered with ICMPv6 unreachable instead of vanishing, while its ISP-A
packets never notice."""

import time
from pathlib import Path

import pytest

from testbed import egress
from testbed.checks import run_all
from testbed.lab import Lab
from testbed.mechanisms.sadr_bgp import bgp_states
from testbed.scenario.run import run_scenario

ROOT = Path(__file__).resolve().parents[2]
LABS = [pytest.param(("topologies/campus-mini.yaml", "s1mbgp", "scenarios/sadr-bgp-access-down.yaml"), id="sadr-bgp"),
        pytest.param(("topologies/campus-mini-igp.yaml", "s1migp", "scenarios/sadr-igp-access-down.yaml"),
                     id="sadr-igp")]
pytestmark = pytest.mark.lab


@pytest.fixture(params=LABS, scope="module")
def case(request):
    topo, name, scenario = request.param
    lab = Lab.deploy(ROOT / topo, name=name, timeout=90)
    try:
        yield lab, ROOT / scenario
    finally:
        lab.destroy()


def test_each_source_leaves_through_its_own_isp(case):
    lab, _ = case
    layout = egress.install_egress_counters(lab)
    failed = [c for c in run_all(lab) if not c.ok]
    assert not failed, failed
    counts = egress.read_egress_counters(lab, layout)
    pa, pb = (str(p) for p in lab.plan.site_prefixes["camp"].values())
    assert counts[("ispa", pa)] > 0 and counts[("ispb", pb)] > 0
    assert counts[("ispa", pb)] == 0 and counts[("ispb", pa)] == 0
    if "rc" in lab.nodes and lab.net.nodes["rc"].services[0].name == "bird":
        assert set(bgp_states(lab, "rc").values()) == {"Established"}


def test_access_link_failure_tells_the_host(case, tmp_path):
    lab, scenario = case
    layout = egress.install_egress_counters(lab)
    a, b, srv = lab.plan.address("h1", "ispa"), lab.plan.address("h1", "ispb"), lab.plan.address("srv")
    result = run_scenario(scenario, tmp_path, lab=lab).result
    assert result.passed, [v for v in result.verdicts if not v.passed]
    counts = egress.read_egress_counters(lab, layout)
    assert counts[("ispa", str(lab.plan.site_prefixes["camp"]["ispb"]))] == 0  # never the wrong exit
    # the host hears of the failure: ICMPv6 errors, not silence
    with egress.source_pings(lab, "h1", [a, b], srv) as traces:
        time.sleep(0.5)
        t0 = time.time()
        lab["rb"].run(["ip", "link", "set", "dev", "ispb", "down"], check=True)
        time.sleep(2)
        t1 = time.time()
        lab["rb"].run(["ip", "link", "set", "dev", "ispb", "up"], check=True)
        lab["ispb"].run(["ip", "link", "set", "dev", "rb", "up"])
        time.sleep(0.5)
    told = traces[b].outcome(t0, t1)
    assert told["told_ms"] is not None and told["told_ms"] < 1000, told
    assert traces[a].outcome(t0, t1)["max_gap_ms"] < 100
