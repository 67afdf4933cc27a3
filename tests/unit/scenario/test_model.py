"""Scenario files: what loads, and that every mistake is reported with file, line and field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from testbed.errors import TopologyError
from testbed.scenario.load import load_scenario, reference_problems
from testbed.scenario.model import IspAddress, LinkDown, TcpSeqFlow, UnknownName

GOOD = """\
name: baseline-1
lab: ../topologies/two-isp-site.yaml
duration: 12
traffic:
  - {name: t1, kind: tcpseq, from: h1, to: server, src: {isp: ispa}, reconnect: true}
  - {kind: probe, from: h1, to: server, src: {isp: ispa}, interval_ms: 100}
  - {kind: ping, from: server, to: h1, dst: "2001:db8:a::10"}
faults:
  - {name: cut, at: 4, kind: link-down, link: [r1, ispa], until: 8}
  - {at: 9, kind: loss, link: r1-ispb, percent: 5, direction: forward}
expect:
  - {flow: t1, max_gap_ms: {lt: 1000}}
  - {flow: f2, new_connections_ok: {ge: 0.95, after: cut+1}}
  - {flow: t1, connection_kept: {eq: false, after: cut, before: cut.end}}
"""


def load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "scn.yaml"
    path.write_text(textwrap.dedent(text))
    return load_scenario(path)


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(TopologyError) as info:
        load(tmp_path, text)
    return [str(p) for p in info.value.problems]


def test_a_good_scenario_loads_with_defaults_and_names(tmp_path):
    loaded = load(tmp_path, GOOD)
    s = loaded.scenario
    assert [f.name for f in s.traffic] == ["t1", "f2", "f3"]
    assert [f.name for f in s.faults] == ["cut", "fault2"]
    t1 = s.traffic[0]
    assert isinstance(t1, TcpSeqFlow) and t1.interval_ms == 10 and t1.src == IspAddress(isp="ispa")
    assert t1.gap_threshold_s == pytest.approx(0.03)
    assert s.traffic[2].dst == "2001:db8:a::10"
    assert isinstance(s.faults[0], LinkDown) and s.faults[0].link == ("r1", "ispa")
    assert s.expect[1].metric == "new_connections_ok" and s.expect[1].bound.after == "cut+1"
    assert s.expect[2].bound.eq == 0.0
    assert s.expect[0].describe() == "t1 max_gap_ms < 1000"
    assert loaded.lab_target() == ("topology", (tmp_path / "../topologies/two-isp-site.yaml").resolve())


def test_a_lab_name_means_a_running_lab(tmp_path):
    loaded = load(tmp_path, "lab: classroom\nduration: 3\n")
    assert loaded.lab_target() == ("running", "classroom")


def test_shape_errors_name_file_line_and_field(tmp_path):
    text = GOOD.replace("interval_ms: 100", "interval_ms: -5").replace("percent: 5", "percent: 500")
    text = text.replace("reconnect: true}", "reconect: true}")
    got = problems(tmp_path, text)
    file = str(tmp_path / "scn.yaml")
    assert f"{file}:5: traffic.0.reconect: unknown field 'reconect'; did you mean 'reconnect'?" in got
    assert f"{file}:6: traffic.1.interval_ms: Input should be greater than 0" in got
    assert f"{file}:10: faults.1.percent: Input should be less than or equal to 100" in got


def test_missing_field_points_at_its_item_and_names_the_field(tmp_path):
    got = problems(tmp_path, """\
        lab: x
        duration: 5
        faults:
          - at: 1
            kind: link-down
        """)
    assert got == [f"{tmp_path / 'scn.yaml'}:4: faults.0.link: Field required"]


def test_bad_address_and_unknown_kind(tmp_path):
    got = problems(tmp_path, """\
        lab: x
        duration: 5
        traffic:
          - kind: udpcbr
            from: a
            to: b
            src: 2001:db8::zz
          - {kind: carrier-pigeon, from: a, to: b}
        """)
    assert any(":7: traffic.0.src: '2001:db8::zz' is not an IP address" in p for p in got)
    assert any(":8: traffic.1: unknown kind 'carrier-pigeon' (kinds: tcpseq, udpcbr, probe, connect, ping, sam)" in p
               for p in got)


def test_expectation_needs_exactly_one_metric(tmp_path):
    got = problems(tmp_path, """\
        lab: x
        duration: 5
        traffic: [{name: t, kind: tcpseq, from: a, to: b}]
        expect:
          - {flow: t, max_gap_ms: {lt: 5}, loss: {le: 0.1}}
          - {flow: t, loss: {after: 2}}
        """)
    assert any(":5: expect.0: give exactly one metric" in p for p in got)
    assert any(":6: expect.1.loss: needs at least one of lt" in p for p in got)


def test_cross_references_are_checked_with_lines(tmp_path):
    got = problems(tmp_path, """\
        lab: x
        duration: 10
        traffic:
          - {name: t, kind: tcpseq, from: a, to: b}
          - {name: t, kind: probe, from: a, to: b, start: 11}
        faults:
          - {name: reset, at: 2, kind: bgp-reset, node: r1, until: 3}
          - {name: down, at: 4, kind: link-down, link: l1}
          - {name: late, at: 12, kind: isp-down, isp: ispa}
        expect:
          - {flow: ghost, loss: {le: 0.1}}
          - {flow: t, reordering: {le: 0.1}}
          - {flow: t, max_gap_ms: {lt: 100, after: nosuch}}
          - {flow: t, max_gap_ms: {lt: 100, after: down.end}}
        """)
    file = tmp_path / "scn.yaml"
    assert f"{file}:5: traffic.1.name: duplicate name 't'" in got
    assert any(p.startswith(f"{file}:5: traffic.1.start: the flow must run within") for p in got)
    assert f"{file}:7: faults.0.until: bgp-reset has no undo; remove until" in got
    assert any(p.startswith(f"{file}:9: faults.2.at: 12 s is after the end") for p in got)
    assert any(p.startswith(f"{file}:11: expect.0.flow: no flow named 'ghost'") for p in got)
    assert any(p.startswith(f"{file}:12: expect.1.reordering: reordering is not measured for tcpseq") for p in got)
    assert any(p.startswith(f"{file}:13: expect.2.max_gap_ms.after: no fault named 'nosuch'") for p in got)
    assert f"{file}:14: expect.3.max_gap_ms.after: down.end: that fault has no until" in got


def test_yaml_syntax_error_has_a_line(tmp_path):
    got = problems(tmp_path, "lab: x\nduration: 5\ntraffic: [\n")
    assert got[0].startswith(f"{tmp_path / 'scn.yaml'}:4: not valid YAML")


def test_reference_problems_against_a_lab(tmp_path):
    loaded = load(tmp_path, GOOD)
    got = [str(p) for p in reference_problems(loaded, nodes={"h1", "r1", "ispa"}, isps={"ispb"})]
    file = tmp_path / "scn.yaml"
    assert f"{file}:5: traffic.0.to: no node named 'server' in the lab (nodes: h1, ispa, r1)" in got
    assert f"{file}:5: traffic.0.src.isp: no ISP named 'ispa' in the lab; did you mean 'ispb'? (ISPs: ispb)" in got
    assert not any("faults.0" in p for p in got)  # [r1, ispa] are both nodes


def test_unknown_flow_and_fault_names_are_named_errors(tmp_path):
    s = load(tmp_path, GOOD).scenario
    with pytest.raises(UnknownName, match=r"no flow named 'nope' \(flows: t1, f2, f3\)"):
        s.flow("nope")
    with pytest.raises(UnknownName, match=r"no fault named 'nope' \(faults: cut, fault2\)"):
        s.fault("nope")
    assert s.flow("t1").kind == "tcpseq" and s.fault("cut").kind == "link-down"
