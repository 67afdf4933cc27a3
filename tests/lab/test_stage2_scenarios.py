"""The stage-2 scenario files on real kernels: every add-on of thesis 6.3 at once on one lab (inbound by
name through PowerDNS, the exit path cache, prefix deprecation, the DHCPv6 policy) while ISP A's access
link is down; and (slow) each mechanism alone under each failure kind, each scenario on its own lab.

The scenarios' expectations are what the site's users want; the tests also check that the run measured
what the expectations talk about (connections by name went to h1's ISP-B address after the fault, the
kernel moved web from its ISP-A to its ISP-B source)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from testbed.scenario.run import run_scenario

ROOT = Path(__file__).resolve().parents[2]
SCEN = ROOT / "scenarios"
pytestmark = [pytest.mark.lab, pytest.mark.mhlab_topology("topologies/stage2-all.yaml", name="s2t1")]
PER_MECHANISM = sorted(p.name for p in SCEN.glob("stage2-*.yaml") if p.name != "stage2-all-on.yaml")


def _events(out: Path, flow: str) -> list[dict]:
    log = next(out.rglob(f"{flow}.client.jsonl"))
    return [e for e in map(json.loads, log.read_text().splitlines()) if e.get("ev") == "connect"]


def _failed(result) -> list[str]:
    return [f"{v.expectation}: {v.measured}" for v in result.verdicts if not v.passed]


def test_everything_on_keeps_new_connections_working_both_ways(lab, tmp_path):
    outcome = run_scenario(SCEN / "stage2-all-on.yaml", tmp_path, lab=lab)
    assert outcome.result.passed, _failed(outcome.result)
    fault = next(f for f in outcome.result.faults if f.name == "cut")
    cut, end = fault.at, fault.until  # unix times, as the agents log
    h1 = {isp: lab.plan.address("h1", isp) for isp in ("ispa", "ispb")}
    by_name = [e for e in _events(tmp_path, "in_by_name") if e["ok"]]
    assert {e["remote"] for e in by_name if cut + 0.5 <= e["started"] < end} == {h1["ispb"]}, \
        "by name, only h1's ISP-B address answers after the fault"
    assert any(e["remote"] == h1["ispa"] for e in by_name if e["started"] < cut), "both answered before it"
    web = [e for e in _events(tmp_path, "web") if e["ok"]]
    assert {e["local"] for e in web if e["started"] < cut} == {h1["ispa"]}, "the policy: web through ISP A"
    assert {e["local"] for e in web if cut + 1.5 <= e["started"] < end} == {h1["ispb"]}, \
        "deprecation: the kernel moved new web connections to the live ISP's address"


@pytest.mark.slow
@pytest.mark.parametrize("name", PER_MECHANISM)
def test_each_mechanism_under_each_failure(name, tmp_path):
    """One stage-2 mechanism, one failure kind, on its own lab (not the module's): the scenario's
    expectations hold (15 labs, 6 min in all)."""
    lab_name = "s2" + "".join(w[:2] for w in name.removesuffix(".yaml").split("-")[1:])[:8]
    outcome = run_scenario(SCEN / name, tmp_path, lab_name=lab_name)
    assert outcome.result.passed, _failed(outcome.result)
