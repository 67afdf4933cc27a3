"""Two students on one machine: each `mhlab exercise start` gets its own lab, and one student's
`mhlab destroy --all` spares the other's.  A private run root keeps other labs of the machine out of it."""

import os
import subprocess
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from testbed.course import catalog, session
from testbed.rundir import RunDir, list_labs

pytestmark = pytest.mark.lab
MHLAB = str(Path(sys.executable).parent / "mhlab")


def test_two_students_labs_and_destroy_all():
    root = Path(tempfile.mkdtemp(prefix="co-students-", dir="/run"))  # FRR (user frr) must traverse it
    root.chmod(0o755)
    ex = catalog.exercise(2)
    labs = [session.start(ex, s, prefix="co", root=root) for s in ("alice", "bob")]
    try:
        assert [lab.name for lab in labs] == ["co02alice", "co02bob"]
        assert RunDir.of("co02bob", root).meta()["owner"] == "bob"
        env = {**os.environ, "SUDO_USER": "alice"}
        res = subprocess.run([MHLAB, "--run-root", str(root), "destroy", "--all", "-q"], env=env,
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        assert "lab co02alice destroyed" in res.stdout
        assert "co02bob spared: it belongs to bob" in res.stderr
        assert [r.lab for r in list_labs(root)] == ["co02bob"]
        assert labs[1].node("h1").run(["true"]).returncode == 0  # bob's lab still runs
    finally:
        for lab in labs:
            if RunDir.of(lab.name, root).exists():
                lab.destroy()
        shutil.rmtree(root, ignore_errors=True)
