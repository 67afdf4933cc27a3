"""A failed lab test leaves its lab's logs behind (testbed.pytest_plugin): the module is marked failed by
any failing attempt - also one that a rerun then passes - and ``keep_logs`` copies the run directory's text
files, never its sockets or captures."""

from __future__ import annotations

import socket
import subprocess
import sys
from types import SimpleNamespace

from testbed.pytest_plugin import keep_logs
from testbed.rundir import RunDir

INNER = """
import pytest
from testbed.pytest_plugin import FAILED

@pytest.fixture(scope="module")
def watch(request):
    yield
    with open({mark!r}, "w") as f:
        f.write(str(request.node.stash.get(FAILED, False)))

def test_it(watch):
    with open({count!r}, "a") as f:
        f.write("x")
    assert {passes}
"""


def test_a_module_is_marked_by_any_failed_attempt(tmp_path):
    """One pytest run (with one rerun) of three modules: one passing, one failing, one whose first attempt
    fails and whose rerun passes."""
    cases = {"passes": "True", "fails": "False", "rerun_passes": "open(__file__ + '.count').read() == 'xx'"}
    inner = tmp_path / "inner"
    inner.mkdir()
    for case, passes in cases.items():
        test = inner / f"test_{case}.py"
        test.write_text(INNER.format(mark=f"{test}.mark", count=f"{test}.count", passes=passes))
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                    "-p", "no:xdist", "--reruns", "1", str(inner)], cwd=tmp_path, capture_output=True, timeout=300)
    marks = {case: (inner / f"test_{case}.py.mark").read_text() for case in cases}
    assert marks == {"passes": "False", "fails": "True", "rerun_passes": "True"}
    assert (inner / "test_rerun_passes.py.count").read_text() == "xx"


def test_keep_logs_copies_text_files_only(tmp_path):
    run = tmp_path / "run" / "lab1"
    node = run / "nodes" / "hA"
    node.mkdir(parents=True)
    (run / "lab.json").write_text('{"readiness": []}')
    (run / "journal.jsonl").write_text("{}\n")
    (node / "shim.out").write_text("ready\n")
    (node / "cap.pcap").write_bytes(b"\xd4\xc3\xb2\xa1")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(node / "shim.sock.log"))  # a socket, even with a kept suffix, is not copied
        dest = keep_logs(SimpleNamespace(name="lab1", rundir=RunDir(run)), tmp_path / "kept")
    kept = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert kept == ["journal.jsonl", "lab.json", "nodes/hA/shim.out"]
    assert (dest / "nodes" / "hA" / "shim.out").read_text() == "ready\n"


def test_keep_logs_of_a_lab_name_kept_before_goes_beside_it(tmp_path):
    """A rerun's fresh lab has the failed attempt's name: its logs never overwrite the first ones."""
    run = tmp_path / "run" / "lab1"
    run.mkdir(parents=True)
    lab = SimpleNamespace(name="lab1", rundir=RunDir(run))
    (run / "a.log").write_text("first\n")
    first = keep_logs(lab, tmp_path / "kept")
    (run / "a.log").write_text("second\n")
    second = keep_logs(lab, tmp_path / "kept")
    assert (first.name, second.name) == ("lab1", "lab1.2")
    assert [(d / "a.log").read_text() for d in (first, second)] == ["first\n", "second\n"]
