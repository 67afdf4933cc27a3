"""Inside a node, `vtysh` and `shimctl` find that node's daemons by themselves (FRR's vty directory is the
router's run folder, bind-mounted in the node's own mount namespace; shimctl reads $MHLAB_NODE_DIR), and
`mhlab check` passes on a healthy shim lab.  The bind mount never shows outside the node and goes with it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.lab import FRR_VTY_DIR

pytestmark = [pytest.mark.lab, pytest.mark.mhlab_topology("topologies/two-sites-shim.yaml", name="cbtools")]
BIN = str(Path(sys.executable).parent)


def mhlab(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}  # shimctl lives next to python
    return subprocess.run([sys.executable, "-m", "testbed.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_vtysh_without_flags(lab):
    res = mhlab("exec", lab.name, "ra1", "--", "vtysh", "-c", "show bgp summary json")
    assert res.returncode == 0, res.stderr
    peers = json.loads(res.stdout)["ipv6Unicast"]["peers"]
    assert {p["state"] for p in peers.values()} == {"Established"} and len(peers) >= 1
    # another router's vtysh talks to that router, not the first one
    res = mhlab("exec", lab.name, "ispa1", "--", "vtysh", "-c", "show bgp summary json")
    assert json.loads(res.stdout)["ipv6Unicast"]["as"] == 65011


def test_shimctl_without_flags(lab):
    res = mhlab("exec", lab.name, "hA", "--", "shimctl", "pairs", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == []  # hA's daemon answered: no context, so no locator pairs yet
    assert lab["hA"].run([f"{BIN}/shimctl", "status"], check=True).stdout.strip()
    # without the node's folder in the environment shimctl has no daemon to talk to
    assert lab["hA"].run(["env", "-u", "MHLAB_NODE_DIR", f"{BIN}/shimctl", "pairs"]).returncode != 0


def test_vty_mount_only_inside_the_node(lab):
    inside = lab["ra1"].run(["findmnt", "-n", "-o", "TARGET", FRR_VTY_DIR]).stdout.strip()
    assert inside == FRR_VTY_DIR
    assert not os.path.ismount(FRR_VTY_DIR), "the node's bind mount leaked into the host"
    assert not lab["hA"].run(["findmnt", "-n", FRR_VTY_DIR]).stdout.strip()  # hosts run no FRR: no mount
    mounts = [r for r in lab.rundir.records() if r.get("kind") == "mount"]
    assert {m["node"] for m in mounts} == {n.name for n in lab.net.routers() if n.frr_daemons}


def test_mhlab_check_passes(lab):
    res = mhlab("check", lab.name, "--json", timeout=120)
    checks = json.loads(res.stdout)
    assert res.returncode == 0, [c for c in checks if not c["ok"]]
    assert any(c["name"].startswith("ingress filter") for c in checks)
