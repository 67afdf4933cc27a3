"""Agents and daemons dying in a running lab: a SIGKILLed shim agent under a live TCP flow leaves the host
working and is restarted by the lab's supervisor (journaled, counted by `mhlab inspect`); a crashed bgpd
is named by `mhlab check` and shown dead by `mhlab inspect`."""

import signal
import subprocess
from pathlib import Path

import pytest

from testbed.checks import ping, run_all
from testbed.inspect import inspect_lab, inspect_text
from testbed.lab import Lab
from testbed.procs import is_alive, signal_exact
from testbed.supervise import restarts
from testbed.wait import wait_until

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def lab():
    lab = Lab.deploy(ROOT / "topologies/two-sites-shim.yaml", name="rbdie")
    yield lab
    lab.destroy()


def latest(lab, node, name):
    return [p for p in lab.rundir.procs() if p.node == node and p.name == name][-1]


def test_killed_shim_agent_fails_open_and_is_restarted(lab):
    dst = lab.plan.address("hB")
    flow = lab["hA"].popen(["iperf3", "-6", "-c", dst, "-t", "6", "-b", "20M"], name="iperf3-client",
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    wait_until(lambda: lab["hA"].run(["ss", "-Htn", "state", "established", "dst", f"[{dst}]"]).stdout.strip(),
               5, 0.1, what="the iperf3 flow established")
    agent = latest(lab, "hA", "shim")
    assert signal_exact(agent.pid, agent.start, signal.SIGKILL)
    out, _ = flow.communicate(timeout=30)
    assert flow.returncode == 0, out  # the flow carried on while the agent was dead
    assert "receiver" in out.decode()
    wait_until(lambda: restarts(lab.rundir).get(("hA", "shim"), 0), 10, 0.2, what="the supervisor's restart")
    new = latest(lab, "hA", "shim")
    assert new.pid != agent.pid
    wait_until(lambda: is_alive(new) and (lab["hA"].dir / "shim.sock").exists(), 20, 0.2,
               what="the restarted agent serving")
    for src in lab.plan.addresses("hA").values():
        assert wait_until(lambda: ping(lab, "hA", src[0], dst), 10, 0.2, what=f"hA -> hB from {src[0]}")
    shown = inspect_lab(lab)
    (ha,) = [n for n in shown["nodes"] if n["name"] == "hA"]
    assert [p["restarts"] for p in ha["processes"] if p["name"] == "shim"][-1] == 1
    assert "restarted 1x" in inspect_text(shown)


def test_dead_bgpd_is_named_by_check_and_inspect(lab):
    bgpd = latest(lab, "ra1", "bgpd")
    assert signal_exact(bgpd.pid, bgpd.start, signal.SIGKILL)
    wait_until(lambda: not is_alive(bgpd), 5, 0.05, what="bgpd gone")
    checks = {c.name: c for c in run_all(lab)}
    assert not checks["process ra1/bgpd"].ok and "dead" in checks["process ra1/bgpd"].detail
    assert checks["process ra1/zebra"].ok and checks["process rb1/bgpd"].ok
    (ra1,) = [n for n in inspect_lab(lab)["nodes"] if n["name"] == "ra1"]
    assert {p["name"]: p["state"] for p in ra1["processes"]}["bgpd"] == "dead"


def test_killed_exit_path_agent_is_restarted_and_the_host_keeps_working():
    """The exit path agent's programs go with it (the kernel detaches them): the host works plainly until
    the supervisor's restart, then the agent serves again."""
    with Lab.deploy(ROOT / "topologies/stage2-site.yaml", name="rbdie2") as lab:
        host = next(n for n, s in lab.net.nodes.items() if any(p.name == "exitpath" for p in s.services))
        dst = next(lab.plan.address(h.name) for h in lab.net.hosts() if h.owner != lab.net.nodes[host].owner)
        agent = latest(lab, host, "exitpath")
        assert signal_exact(agent.pid, agent.start, signal.SIGKILL)
        src = lab.plan.address(host)
        assert wait_until(lambda: ping(lab, host, src, dst), 10, 0.2, what="ping while the agent is dead")
        wait_until(lambda: restarts(lab.rundir).get((host, "exitpath"), 0), 10, 0.2, what="the restart")
        new = latest(lab, host, "exitpath")
        wait_until(lambda: is_alive(new) and (lab[host].dir / "exitpath.sock").exists(), 20, 0.2,
                   what="the restarted exit path agent serving")
        assert {c.name: c.ok for c in run_all(lab)}[f"process {host}/exitpath"]
