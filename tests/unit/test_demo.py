"""The demo's pure parts: rows from the registry (none first), the mechanism swap, each row's demo scenario
valid on its swapped lab, and the side-by-side table / report / plot from synthetic results."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from testbed import demo_report
from testbed.demo import REPO_ROOT, DemoResult, demo_rows, lab_name, row_lab, summarise
from testbed.kinds import load_lab, netplan_for
from testbed.mechanisms import Mechanism, mechanisms
from testbed.render import render
from testbed.scenario import analysis as a
from testbed.scenario.load import load_scenario, reference_problems
from testbed.topology import NAME_PATTERN

T0 = 1000.0
ROWS = demo_rows()


def test_rows_come_from_the_registry_with_none_first():
    names = [r.mechanism for r in ROWS]
    assert names[0] == "none"
    assert {"sadr-static", "shim"} <= set(names)
    assert names == ["none"] + [m.name for m in mechanisms().values() if m.demo and m.name != "none"]


def test_a_registered_mechanism_with_a_demo_becomes_a_row():
    fake = Mechanism("zz-new", "a new one", "9.9", lambda net, site: None, demo="scenarios/demo-link-down.yaml")
    rows = demo_rows({**mechanisms(), "zz-new": fake})
    assert rows[0].mechanism == "none" and rows[-1].mechanism == "zz-new"


def test_lab_names_are_valid_and_distinct():
    names = [r.lab_name for r in demo_rows(prefix="demo")]
    assert len(set(names)) == len(names)
    assert all(re.match(NAME_PATTERN, n) for n in names)
    assert lab_name("demo", 1, "sadr-static") == "demo1sadrs"


def test_with_mechanism_swaps_every_site_and_drops_foreign_options():
    topo = load_lab(REPO_ROOT / "topologies/two-sites-shim.yaml")
    assert all(s.options for s in topo.sites)
    none = topo.with_mechanism("none")
    assert {s.mechanism for s in none.sites} == {"none"} and all(not s.options for s in none.sites)
    shim = topo.with_mechanism("shim")
    assert [s.options for s in shim.sites] == [s.options for s in topo.sites]
    assert none.source.file == topo.source.file


@pytest.mark.parametrize("row", ROWS, ids=[r.mechanism for r in ROWS])
def test_each_rows_scenario_is_valid_on_its_swapped_lab(row, tmp_path):
    loaded = load_scenario(row.scenario)
    topo = row_lab(loaded, row.mechanism)
    net = netplan_for(topo)
    assert {n.mechanism for n in net.nodes.values() if n.mechanism} == {row.mechanism}
    assert render(net, tmp_path)
    isps = {i.name for i in topo.isps}
    assert not reference_problems(loaded, set(net.nodes), isps, {l.segment for l in net.links})
    kinds = [f.kind for f in loaded.scenario.traffic]
    assert "tcpseq" in kinds and "probe" in kinds and loaded.scenario.faults


# ---------------------------------------------------------------- synthetic results

def _flow(name, kind, src, gaps=(), broken=0, attempts=()):
    return a.FlowResult(
        name=name, kind=kind, from_node="hA", to_node="hB", src=src, dst="2001:db8:b101:1::10", window=(0.1, 10.0),
        gap_threshold_ms=30.0, delivered=300, sent=None, lost=None, loss=None, duplicates=None, reordered=None,
        gaps=gaps, max_gap_ms=max((g.duration for g in gaps), default=0) * 1000, failovers=(),
        connections_opened=1 if kind == "tcpseq" else 0, connections_broken=broken,
        attempts_ok=sum(ok for _, ok in attempts), attempts_total=len(attempts), connect_ms_median=None,
        attempt_windows=(a.AttemptWindow("cut", 0, 0, sum(ok for t, ok in attempts if t > 3),
                                         sum(t > 3 for t, _ in attempts)),) if attempts else (),
        timeline=(1,) * 30 + ((0,) * 70 if gaps and gaps[-1].open else (1,) * 70),
        attempts=attempts, errors=())


def _result(est_gaps, a1_ok, a2_ok, kept):
    times = [0.5 * i for i in range(1, 20)]
    flows = (_flow("established", "tcpseq", "2001:db8:a101:1::10", est_gaps),
             _flow("new_from_ispa1", "probe", "2001:db8:a101:1::10", attempts=tuple((t, t < 3 or a1_ok) for t in times)),
             _flow("new_from_ispa2", "probe", "2001:db8:a201:1::10", attempts=tuple((t, a2_ok) for t in times)))
    verdict = a.Verdict("established connection_kept == 1", "established", "connection_kept", float(kept), kept,
                        (0.1, 10.0))
    verdict2 = a.Verdict("x", "new_from_ispa2", "new_connections_ok", 1.0, a2_ok, (3, 10))
    fault = a.FaultEvent("cut", "link-down", T0 + 3.0, None, "ispa1-ra1 down")
    return a.ScenarioResult("demo-link-down", "../topologies/two-sites-shim.yaml", 10.0, T0, (fault,), flows,
                            (verdict, verdict2))


def demo() -> DemoResult:
    loaded = load_scenario(ROWS[0].scenario)
    stuck = (a.Gap(0.5, 0.55, 0.05, False), a.Gap(3.0, 10.0, 7.0, True))
    outcomes = {"none": _result(stuck, False, False, False), "sadr-static": _result(stuck, False, True, False),
                "shim": _result((a.Gap(0.5, 0.6, 0.1, False),), True, True, True)}
    rows = [replace(summarise(r, loaded, outcomes.get(r.mechanism, outcomes["shim"])),
                    report_dir=Path("/tmp/out") / r.mechanism, wall_s=20.0) for r in ROWS]
    return DemoResult(tuple(rows), 24.0, True)


def test_summary_reads_as_the_user_asks():
    by = {r.row.mechanism: r for r in demo().rows}
    assert (by["none"].survives, by["sadr-static"].survives, by["shim"].survives) == (False, False, True)
    assert by["none"].longest_gap_ms == pytest.approx(7000) and by["none"].gap_open
    assert by["shim"].longest_gap_ms == 0  # its only gap was before the fault
    assert [(n.source, n.ok, n.total) for n in by["sadr-static"].new_connections] == [("ispa1", 0, 13),
                                                                                        ("ispa2", 13, 13)]
    assert dict(by["shim"].wants_met)["the established connection survives"] is True


def test_terminal_table_has_one_row_per_mechanism():
    text = demo_report.terminal(demo())
    assert re.search(r"^none +ch\. 3\.5 +no +7\.00 s, never recovered +0/13 +0/13$", text, re.M), text
    assert re.search(r"^sadr-static +6\.2\.2\.1 +no +7\.00 s, never recovered +0/13 +13/13$", text, re.M)
    assert re.search(r"^shim +6\.4 +yes +none over 30 ms +13/13 +13/13$", text, re.M)
    assert "ISP A1's access link" in text and "3 labs, in parallel: 24.0 s wall time" in text
    assert "PASS" not in text and "FAIL" not in text


def test_markdown_json_and_png(tmp_path):
    d = demo()
    d = DemoResult(tuple(replace(r, report_dir=tmp_path / r.row.mechanism) for r in d.rows), d.wall_s, d.parallel)
    files = demo_report.write(d, tmp_path)
    md = files.markdown.read_text()
    assert "| none | ch. 3.5 | no | 7.00 s, never recovered | 0/13 | 0/13 |" in md
    assert "[report](shim/report.md)" in md and "![comparison](comparison.png)" in md
    doc = json.loads(files.json.read_text())
    assert doc["schema"] == demo_report.SCHEMA
    rows = {r["mechanism"]: r for r in doc["rows"]}
    assert rows["shim"]["connection_survives"] is True and rows["none"]["gap_never_recovered"] is True
    assert rows["sadr-static"]["new_connections_after_fault"][1] == {
        "source": "ispa2", "address": "2001:db8:a201:1::10", "ok": 13, "total": 13}
    assert rows["none"]["scenario"] == "scenarios/demo-link-down.yaml"
    assert files.png.read_bytes().startswith(b"\x89PNG")


def test_a_row_that_could_not_run_says_why():
    d = demo()
    broken = replace(d.rows[0], error="deploying a lab needs root (network namespaces): run with sudo",
                     survives=None, result=None, report_dir=None)
    d = DemoResult((broken, *d.rows[1:]), 1.0, True)
    assert not d.ran
    assert "could not run: deploying a lab needs root" in demo_report.terminal(d)
