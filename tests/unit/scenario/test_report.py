"""Report rendering from a synthetic result: failing verdicts, never-recovered flows, stable JSON fields."""

from __future__ import annotations

import json

from testbed.scenario import analysis as a
from testbed.scenario.report import SCHEMA, fmt_ms, markdown, report_dict, summary, write_report

T0 = 500.0


def result() -> a.ScenarioResult:
    flow = a.FlowResult(
        name="t1", kind="tcpseq", from_node="h1", to_node="srv", src="2001:db8:a::10", dst="2001:db8::80",
        window=(0.1, 10.0), gap_threshold_ms=30.0, delivered=290, sent=1000, lost=710, loss=0.71, duplicates=0,
        reordered=0, gaps=(a.Gap(2.99, 10.0, 7.01, True),), max_gap_ms=7010.0,
        failovers=(a.FailoverResult("cut", 3.0, None, 2.99),), connections_opened=1, connections_broken=0,
        attempts_ok=1, attempts_total=1, connect_ms_median=0.3, attempt_windows=(), timeline=(10,) * 30 + (0,) * 70,
        attempts=((0.1, True),), errors=())
    verdict = a.Verdict("t1 failover_ms < 1000 after cut", "t1", "failover_ms", None, False, (3.0, 10.0),
                        "never recovered")
    fault = a.FaultEvent("cut", "link-down", T0 + 3.0, T0 + 6.0, "r1 -- ispa")
    return a.ScenarioResult("baseline-1", "two-isp.yaml", 10.0, T0, (fault,), (flow,), (verdict,))


def test_json_has_the_schema_version_relative_times_and_measurements():
    doc = report_dict(result())
    assert doc["schema"] == SCHEMA and doc["passed"] is False
    assert doc["faults"] == [{"name": "cut", "kind": "link-down", "at": 3.0, "until": 6.0, "detail": "r1 -- ispa"}]
    (flow,) = doc["flows"]
    assert flow["gaps"] == [{"start": 2.99, "end": 10.0, "duration": 7.01, "open": True}]
    assert flow["failovers"][0]["failover_ms"] is None and flow["loss"] == 0.71
    assert doc["expectations"][0]["note"] == "never recovered"
    json.dumps(doc, allow_nan=False)  # strictly valid JSON


def test_summary_and_markdown_say_what_failed_and_why():
    text = summary(result())
    assert "FAIL  t1 failover_ms < 1000 after cut  never recovered" in text
    assert "cut: never" in text and "7.01 s (open)" in text
    assert text.rstrip().endswith("baseline-1: FAIL (1 of 1 expectations failed)")
    md = markdown(result())
    assert md.startswith("# Scenario baseline-1: FAIL")
    assert "| 2.990 | - | 7.01 s | never recovered |" in md
    assert "| cut | link-down | 3.000 | 6.000 | r1 -- ispa |" in md


def test_write_report_makes_three_files(tmp_path):
    files = write_report(result(), tmp_path / "out")
    assert json.loads(files.json.read_text())["scenario"] == "baseline-1"
    assert files.timeline.read_bytes().startswith(b"\x89PNG")
    assert files.markdown.read_text() == markdown(result())


def test_fmt_ms():
    assert (fmt_ms(None), fmt_ms(12.4), fmt_ms(1500)) == ("never", "12 ms", "1.50 s")
