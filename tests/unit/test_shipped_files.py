"""Every lab file shipped in topologies/ renders, and every scenario in scenarios/ names only what its lab has."""

from pathlib import Path

import pytest

from testbed.kinds import load_lab, netplan_for
from testbed.render import render
from testbed.scenario.load import load_scenario
from testbed.scenario.resolve import PlannedLab, resolve

ROOT = Path(__file__).resolve().parents[2]
LABS = sorted((ROOT / "topologies").glob("*.yaml"))
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))


def test_scenarios_and_labs_live_apart():
    assert not [f.name for f in LABS if "\nduration:" in "\n" + f.read_text()]
    assert all("\nlab:" in "\n" + f.read_text() for f in SCENARIOS)


def test_there_are_files_to_check():
    assert len(LABS) >= 5 and len(SCENARIOS) >= 8


@pytest.mark.parametrize("path", LABS, ids=[f.name for f in LABS])
def test_lab_file_renders(path, tmp_path):
    net = netplan_for(load_lab(path))
    assert net.nodes
    assert render(net, tmp_path)


@pytest.mark.parametrize("path", SCENARIOS, ids=[f.name for f in SCENARIOS])
def test_scenario_references_exist_in_its_lab(path):
    loaded = load_scenario(path)
    kind, target = loaded.lab_target()
    assert kind == "topology" and Path(target).exists()
    resolved, _ = resolve(loaded, PlannedLab(netplan_for(load_lab(target))))  # ScenarioError lists any problem
    assert len(resolved.flows) == len(loaded.scenario.traffic) and len(resolved.faults) == len(loaded.scenario.faults)
