"""A lab over two servers: network namespaces on this machine, each with its own sshd in a PID namespace of
its own (``testbed.cluster.netns_servers``), reached over ssh on an underlay the test builds (10.78.0.0/24,
only between these namespaces).  The default lab is split: the ISPs, the core and the server on s1, the
site on s2, so both access links (ispa-ra, ispb-rb) are VXLAN.  It converges and passes `mhlab check`, full-
size packets cross the VXLAN links, a scenario runs across, and destroy - also after the deploying process
was SIGKILLed - leaves nothing on either server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from testbed.checks import run_all
from testbed.cluster.model import load_cluster
from testbed.cluster.netns_servers import Servers
from testbed.cluster.ssh import Remote
from testbed.inspect import inspect_lab
from testbed.lab import Lab, destroy
from testbed.procs import tagged_pids
from testbed.rundir import RunDir
from testbed.scenario.load import parse_scenario
from testbed.scenario.run import run_loaded
from testbed.wait import wait_until
from testbed.yamlmarks import MarkedDoc

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]
TOPO = ROOT / "topologies" / "two-isp-site.yaml"
PLACE = {"s1": ["core", "srv", "ispa", "ispb"], "s2": ["ra", "rb", "h1", "h2"]}


@pytest.fixture(scope="module")
def servers():
    s = Servers("clt")
    if s.dir.exists():  # what a killed run of this module left: exactly its own journal's namespaces
        s.down()
    s.up(2, "10.78.0.0/24")
    yield s
    assert not s.down()["left"]


@pytest.fixture(scope="module")
def cluster(servers):
    c = load_cluster(servers.cluster_file)
    return c.model_validate({**c.model_dump(), "place": PLACE})


def _server_state(cluster, server: str) -> tuple[list[str], list[str]]:
    """Processes on a server other than its sshd and this very look, and its network interfaces."""
    r = Remote(server, cluster.servers[server], "none")
    ps = r.run(["ps", "-e", "-o", "pid=,args="], timeout=30).stdout
    procs = [p.strip() for p in ps.splitlines() if p.strip()
             and not p.split(None, 1)[1].startswith(("sshd:", "ps -e"))]
    links = json.loads(r.run(["ip", "-j", "link", "show"], timeout=30).stdout)
    return procs, [link["ifname"] for link in links]


def _later_fault(path: Path, at: float, duration: float):
    """A shipped scenario with its fault later: a flow on another server starts 1-5 s after its start
    time on this loaded machine (one ssh session, a relay and the agent's start each), so a fault at 3 s
    would come before the connection it is meant to break was even opened."""
    data = yaml.safe_load(path.read_text())
    data["duration"] = duration
    for fault in data["faults"]:
        fault["at"] = at
    return parse_scenario(MarkedDoc(data, str(path)), path.parent)


def _assert_servers_clean(cluster) -> None:
    for server in cluster.servers:
        procs, links = _server_state(cluster, server)
        assert procs == [], f"server {server} still runs: {procs}"
        assert sorted(links) == ["lo", "ul0"], f"server {server} still has interfaces: {links}"


def test_a_relayed_process_stops_with_its_proxy(servers, cluster):
    """The guarantee every remote daemon rests on: stopping (or SIGKILLing) the local ssh proxy the journal
    records stops the process on the server; a signal through the proxy reaches the process itself."""
    r = Remote("s1", cluster.servers["s1"], "clrelay")
    proc = r.relay(1, ["sleep", "300"], {})
    pid, _ = proc.locate()
    proc.terminate()  # -> the process itself gets SIGTERM, the proxy returns its status
    assert proc.wait(15) == 128 + signal.SIGTERM
    proc = r.relay(1, ["sleep", "300"], {})
    pid, _ = proc.locate()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(5)
    wait_until(lambda: r.run(["sh", "-c", f"test -d /proc/{pid} && echo alive || echo gone"]).stdout.strip(),
               10, 0.2, ok=lambda s: s == "gone", what="the relayed sleep on s1 stopping")
    assert json.loads(r.run(r.serverctl("sweep", "--lab", "clrelay")).stdout)["processes"] == 0


@pytest.mark.slow
def test_default_lab_split_over_two_servers(servers, cluster, tmp_path):
    lab = Lab.deploy(TOPO, name="clsplit", cluster=cluster)
    swept = None
    try:
        assert {n: h.remote.name for n, h in lab.nodes.items() if not n.startswith("br:")} == \
            {n: s for s, nodes in PLACE.items() for n in nodes}
        # the nodes are really elsewhere: a process of s2's PID namespace, an access link that is VXLAN
        links = {r["segment"]: r["as"] for r in lab.rundir.records() if r.get("kind") == "link"}
        assert links["ispa-ra"].startswith("vxlan") and links["ispb-rb"].startswith("vxlan")
        assert links["core-ispa"] == "veth"
        detail = lab["ra"].run(["ip", "-d", "link", "show", "ispa"], check=True).stdout
        assert "vxlan id" in detail and "mtu 1500" in detail
        # full-size packets cross (1500 on the lab links, the underlay is 1550), one more byte does not
        srv = lab.plan.addresses("srv")["core"][0]
        assert lab["h1"].run(["ping", "-c", "1", "-W", "3", "-M", "do", "-s", "1452", srv]).returncode == 0
        too_big = lab["h1"].run(["ping", "-c", "1", "-W", "3", "-M", "do", "-s", "1453", srv])
        assert too_big.returncode != 0 and "too long" in too_big.stdout + too_big.stderr
        bad = [c for c in run_all(Lab.attach("clsplit")) if not c.ok]
        assert not bad, bad
        shown = inspect_lab(Lab.attach("clsplit"))  # `mhlab inspect` names each node's server
        assert {n["name"]: n["server"] for n in shown["nodes"] if not n["name"].startswith("br:")} == \
            {n: s for s, nodes in PLACE.items() for n in nodes}
        assert [s["name"] for s in shown["servers"]] == ["s1", "s2"]
        loaded = _later_fault(ROOT / "scenarios" / "baseline-link-down.yaml", at=8, duration=14)
        outcome = run_loaded(loaded, tmp_path / "scenario", attach="clsplit")
        assert outcome.result.passed, [v for v in outcome.result.verdicts if not v.passed]
    finally:
        swept = destroy("clsplit")
    assert swept["servers"]["s1"]["processes"] > 0 and swept["servers"]["s2"]["processes"] > 0
    assert not tagged_pids("clsplit")
    _assert_servers_clean(cluster)


@pytest.mark.slow
def test_sigkill_mid_deploy_then_destroy_leaves_nothing_on_any_server(servers, cluster, tmp_path):
    """The deploying process is SIGKILLed while it builds the VXLAN links; a fresh `mhlab destroy` sweeps
    both servers from the journal."""
    (tmp_path / "cluster.yaml").write_text(json.dumps(cluster.model_dump()))
    proc = subprocess.Popen([sys.executable, "-m", "testbed.cli", "deploy", str(TOPO), "--name", "clkill",
                             "--cluster", str(tmp_path / "cluster.yaml"), "-q"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    rundir = RunDir.of("clkill")
    try:
        wait_until(lambda: any(r.get("kind") == "vxlan" for r in rundir.records()), 240, 0.05,
                   what="the deploy creating its first VXLAN device")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    res = subprocess.run([sys.executable, "-m", "testbed.cli", "destroy", "clkill"], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "server s2" in res.stdout and not rundir.path.exists()
    time.sleep(0.5)
    assert not tagged_pids("clkill")
    _assert_servers_clean(cluster)
