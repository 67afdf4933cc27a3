"""Exact cleanup: SIGKILL the orchestrator mid-deploy, destroy, and nothing of that lab is left -
while a look-alike process started outside the lab survives.  Two labs run side by side."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testbed.checks import ping
from testbed.lab import Lab
from testbed.procs import tagged_pids

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]
TOPO = ROOT / "topologies" / "two-isp-site.yaml"


def _namespaces_of(pids):
    """Network namespaces the given processes are in."""
    out = set()
    for pid in pids:
        try:
            out.add(os.readlink(f"/proc/{pid}/ns/net"))
        except OSError:
            pass
    return out


def _lab_tag(pid: int) -> bytes | None:
    try:
        env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
    except OSError:
        return None
    return next((e.split(b"=", 1)[1] for e in env if e.startswith(b"MHLAB_LAB=")), None)


def _all_namespaces(lab: str = "tkill"):
    """Namespaces some process is in - except processes of other labs: a namespace inode freed by this
    lab is soon reused by a lab that another test builds at the same time (parallel workers)."""
    return _namespaces_of(int(e.name) for e in os.scandir("/proc") if e.name.isdigit()
                          and _lab_tag(int(e.name)) in (None, lab.encode()))


def test_sigkill_mid_deploy_then_destroy_leaves_nothing():
    from testbed.rundir import run_root
    tmp_path = run_root()
    decoy = subprocess.Popen(["bash", "-c", "exec -a 'zebra mininet:ra' sleep 600"])  # looks like ours
    try:
        proc = subprocess.Popen([sys.executable, "-m", "testbed.cli", "--run-root", str(tmp_path), "deploy",
                                 str(TOPO), "--name", "tkill"], stderr=subprocess.PIPE, text=True)
        seen = []
        for line in proc.stderr:  # kill it while FRR is starting: namespaces, links and daemons exist
            seen.append(line)
            if "start FRR" in line:
                time.sleep(0.3)
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert any("start FRR" in s for s in seen), seen
        ours = tagged_pids("tkill")
        assert ours, "the killed deploy left no processes to clean up (the test did not test anything)"
        namespaces = _namespaces_of(ours) - _namespaces_of([os.getpid()])
        assert namespaces
        res = subprocess.run([sys.executable, "-m", "testbed.cli", "--run-root", str(tmp_path), "destroy", "tkill"],
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        assert tagged_pids("tkill") == {}
        assert not namespaces & _all_namespaces(), "a namespace of the lab still has a process in it"
        assert not (tmp_path / "tkill").exists()
        assert decoy.poll() is None, "destroy killed a process that was not the lab's"
    finally:
        decoy.kill()
        decoy.wait()


def test_two_labs_at_once():
    from testbed.rundir import run_root
    tmp_path = run_root()
    first = Lab.deploy(TOPO, name="tpair1", root=tmp_path)
    try:
        second = Lab.deploy(TOPO, name="tpair2", root=tmp_path)
        try:
            for lab in (first, second):
                assert ping(lab, "h1", lab.plan.address("h1", "ispb"), lab.plan.address("srv"))
            first.destroy()
            assert ping(second, "h1", second.plan.address("h1", "ispa"), second.plan.address("srv"))
            assert tagged_pids("tpair1") == {}
        finally:
            second.destroy()
    finally:
        if (tmp_path / "tpair1").exists():
            first.destroy()
