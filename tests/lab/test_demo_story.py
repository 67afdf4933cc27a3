"""`mhlab demo` on real kernels tells the thesis's story: the same fault (ISP A1's access link fails under an
established TCP flow and new-connection probes) on the same two-site lab, once per mechanism.

- none: the established connection breaks, and no new connection works after the fault;
- sadr-static: new connections from the ISP-A2 address work, but the established ISP-A1 connection breaks;
- shim: the established connection survives.
About 25 s on 2 cores (three labs in parallel)."""

import json

import pytest

from testbed import demo_report
from testbed.demo import run_demo

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def demo(request, tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    result = run_demo(out, prefix="det", run_root=request.config.getoption("--mhlab-run-root"), verbose=False)
    files = demo_report.write(result, out)
    print("\n" + demo_report.terminal(result))
    return result, files


def _row(demo, mechanism):
    return next(r for r in demo[0].rows if r.row.mechanism == mechanism)


def _new(row, source):
    return next(n for n in row.new_connections if n.source == source)


def test_every_row_ran(demo):
    result, _ = demo
    assert result.ran, [r.error for r in result.rows]
    assert [r.row.mechanism for r in result.rows][:3] == ["none", "sadr-static", "shim"]


def test_without_a_mechanism_the_connection_breaks_and_new_connections_fail(demo):
    none = _row(demo, "none")
    assert none.survives is False and none.gap_open
    assert _new(none, "ispa2").ok == 0 and _new(none, "ispa1").ok == 0
    assert _new(none, "ispa2").total >= 20


def test_sadr_static_keeps_new_connections_from_the_other_isp_but_not_the_connection(demo):
    sadr = _row(demo, "sadr-static")
    assert sadr.survives is False and sadr.gap_open
    isp_a2 = _new(sadr, "ispa2")
    assert isp_a2.total >= 20 and isp_a2.ok >= 0.9 * isp_a2.total
    assert _new(sadr, "ispa1").ok == 0


def test_the_shim_keeps_the_connection(demo):
    shim = _row(demo, "shim")
    assert shim.survives is True and not shim.gap_open
    assert shim.longest_gap_ms < 10000
    isp_a2 = _new(shim, "ispa2")
    assert isp_a2.ok >= 0.9 * isp_a2.total


def test_report_files_tell_the_same_story(demo):
    _, files = demo
    doc = json.loads(files.json.read_text())
    assert [r["connection_survives"] for r in doc["rows"]][:3] == [False, False, True]
    assert files.png.read_bytes().startswith(b"\x89PNG")
    assert "| shim | 6.4 | yes |" in files.markdown.read_text()
