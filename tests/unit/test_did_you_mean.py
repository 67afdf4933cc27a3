"""Unknown fields suggest the closest valid name - in lab files and scenario files alike."""

from __future__ import annotations

import pytest

from testbed.errors import TopologyError, did_you_mean
from testbed.kinds import load_lab
from testbed.scenario.load import load_scenario
from testbed.scenario.model import Scenario
from testbed.topology import Topology
from testbed.yamlmarks import unknown_field


def test_the_suggestion_helper():
    assert did_you_mean("intervall_ms", ["interval_ms", "size"]) == "; did you mean 'interval_ms'?"
    assert did_you_mean("zzz", ["interval_ms"]) == "" and did_you_mean(3, ["a"]) == ""


def test_the_walk_finds_the_mapping_that_refused_the_key():
    assert unknown_field(Scenario, ("traffic", 0, "probe", "conect_timeout_ms")) == \
        "unknown field 'conect_timeout_ms'; did you mean 'connect_timeout_ms'?"
    assert unknown_field(Scenario, ("expect", 2, "loss", "befor")) == "unknown field 'befor'; did you mean 'before'?"
    assert unknown_field(Topology, ("isps", 0, "upstream")) == "unknown field 'upstream'; did you mean 'upstreams'?"


def test_a_lab_file_typo(tmp_path):
    path = tmp_path / "lab.yaml"
    path.write_text("name: x\nisps:\n  - {name: ispa, asn: 65001, upstream: []}\nsites: []\n")
    with pytest.raises(TopologyError) as info:
        load_lab(path)
    assert f"{path}:3: isps.0.upstream: unknown field 'upstream'; did you mean 'upstreams'?" in str(info.value)


def test_a_scenario_typo_and_an_old_name(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("lab: x.yaml\nduraton: 5\ntraffic:\n  - {kind: probe, from: a, to: b, every_ms: 100}\n")
    with pytest.raises(TopologyError) as info:
        load_scenario(path)
    text = str(info.value)
    assert f"{path}:2: duraton: unknown field 'duraton'; did you mean 'duration'?" in text
    assert f"{path}:4: traffic.0.every_ms: unknown field 'every_ms'; did you mean 'interval_ms'?" in text
