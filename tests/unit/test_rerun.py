"""A lab test's rerun (tests/conftest.py) starts from a known state: the module- and class-scoped fixtures
the failed attempt used - the module's lab - are torn down and set up afresh before it, session-scoped ones
are kept, the failed attempt's lab is the one marked failed (its logs kept), and the summary names the
rerun."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"

INNER = """
import pytest
from testbed.pytest_plugin import FAILED

LOG = {log!r}


def note(*words):
    with open(LOG, "a") as f:
        f.write(" ".join(str(w) for w in words) + "\\n")


def deploys():
    with open(LOG) as f:
        return sum(line.startswith("deploy") for line in f)


@pytest.fixture(scope="session")
def host():
    note("host up")
    yield
    note("host down")


@pytest.fixture(scope="module")
def lab(request, host):
    state = {{"n": deploys() + 1, "changed": False}}
    note("deploy", state["n"])
    yield state
    note("destroy", state["n"], "failed" if request.node.stash.get(FAILED, False) else "passed")


@pytest.fixture(scope="module")
def site(lab):
    note("site", lab["n"])
    return lab["n"]


class TestInAClass:
    @pytest.fixture(scope="class")
    @classmethod
    def probe(cls, lab):
        note("probe", lab["n"])
        return lab["n"]

    def test_probe(self, probe):
        assert probe >= 1


def test_before(lab):
    assert not lab["changed"]


@pytest.mark.flaky(reruns=1)
def test_changes_the_lab(lab, site):
    assert not lab["changed"], "rerun on the lab its failed attempt changed"
    lab["changed"] = True
    assert lab["n"] == 2 and site == 2  # the first attempt (lab 1) fails after changing its lab


def test_after(lab):
    assert lab == {{"n": 2, "changed": True}}
"""


def test_a_rerun_starts_from_a_fresh_module_lab(tmp_path):
    inner = tmp_path / "inner"
    inner.mkdir()
    shutil.copyfile(CONFTEST, inner / "conftest.py")
    log = tmp_path / "log"
    log.write_text("")
    (inner / "test_lab.py").write_text(INNER.format(log=str(log)))
    out = subprocess.run([sys.executable, "-m", "pytest", "-ra", "-p", "no:cacheprovider", "-p", "no:randomly",
                          "-p", "no:xdist", str(inner)], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert log.read_text().splitlines() == [
        "host up", "deploy 1", "probe 1", "site 1",
        "destroy 1 failed",  # before the rerun, with the failed attempt's mark (its logs are kept)
        "deploy 2", "site 2", "destroy 2 passed", "host down"]
    assert "RERUN inner/test_lab.py::test_changes_the_lab" in out.stdout, out.stdout
    summary = out.stdout.split("rerun test summary info")[1]
    assert "assert lab[\"n\"] == 2 and site == 2" in summary, out.stdout  # the first attempt's traceback
    assert "4 passed, 1 rerun" in out.stdout, out.stdout


def test_a_test_that_passes_first_time_keeps_its_module_lab(tmp_path):
    inner = tmp_path / "inner"
    inner.mkdir()
    shutil.copyfile(CONFTEST, inner / "conftest.py")
    log = tmp_path / "log"
    log.write_text("deploy 0\n")  # the lab is number 2 on first deploy: every test passes first time
    (inner / "test_lab.py").write_text(INNER.format(log=str(log)))
    out = subprocess.run([sys.executable, "-m", "pytest", "-ra", "-p", "no:cacheprovider", "-p", "no:randomly",
                          "-p", "no:xdist", str(inner)], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert log.read_text().splitlines() == ["deploy 0", "host up", "deploy 2", "probe 2", "site 2",
                                            "destroy 2 passed", "host down"]
    assert "RERUN" not in out.stdout and "rerun" not in out.stdout.splitlines()[-1], out.stdout
