"""Cluster files, placement, VNIs and the ssh command lines - no root, no servers."""

from __future__ import annotations

import shlex

import pytest

from testbed.cluster.build import vni_of
from testbed.cluster.model import Cluster, load_cluster, vxlan_overhead
from testbed.cluster.ssh import Remote
from testbed.errors import LabError, TopologyError
from testbed.procs import ProcRecord

FILE = """\
servers:
  s1: {host: 10.77.0.11}
  s2: {host: 10.77.0.12, user: lab, sudo: true, ssh: [ssh, -F, /etc/mhlab/ssh_config], python: /opt/mhlab/bin/python}
place:
  s1: [core, srv, ispa, ispb]
  s2: [ra, rb, h1]
mtu: 1450
"""


@pytest.fixture
def cluster(tmp_path) -> Cluster:
    (tmp_path / "c.yaml").write_text(FILE)
    return load_cluster(tmp_path / "c.yaml")


def test_placement_default_and_bridges(cluster):
    assert cluster.server_of("ra") == "s2" and cluster.server_of("core") == "s1"
    assert cluster.server_of("h2") == "s1"  # unplaced: the first server (no `default:`)
    bridges = {"br:site-lan": ["ra", "rb", "h1", "h2"]}
    assert cluster.server_of("br:site-lan", bridges) == "s2"  # with most of its members
    moved = cluster.with_placement(["h1=s1", "ra=s1"])
    assert moved.server_of("h1") == "s1" and moved.server_of("br:site-lan", bridges) == "s1"
    assert cluster.server_of("h1") == "s2"  # the original is unchanged


def test_errors_name_the_file_line_and_field(tmp_path):
    (tmp_path / "bad.yaml").write_text("servers:\n  s1: {host: 10.0.0.1, port: 22}\nmtu: 1000\n")
    with pytest.raises(TopologyError) as err:
        load_cluster(tmp_path / "bad.yaml")
    text = str(err.value)
    assert f"{tmp_path / 'bad.yaml'}:2: servers.s1.port" in text and ":3: mtu" in text
    (tmp_path / "name.yaml").write_text("servers:\n  S_1: {host: 10.0.0.1}\n")
    with pytest.raises(TopologyError, match="server name 'S_1'"):
        load_cluster(tmp_path / "name.yaml")


def test_placement_must_name_real_nodes_and_servers(cluster):
    cluster.check_nodes(["core", "srv", "ispa", "ispb", "ra", "rb", "h1", "h2"])
    with pytest.raises(TopologyError, match="no node 'h1'"):
        cluster.check_nodes(["core", "srv", "ispa", "ispb", "ra", "rb"])
    with pytest.raises(TopologyError, match="no server 's9'"):
        cluster.with_placement(["h1=s9"]).check_nodes(["core", "srv", "ispa", "ispb", "ra", "rb", "h1"])
    with pytest.raises(TopologyError, match="NODE=SERVER"):
        cluster.with_placement(["h1"])


def test_one_vni_per_link_and_lab():
    vnis = {vni_of("twoisp", i) for i in range(100)}
    assert len(vnis) == 100 and all(0 < v < 2 ** 24 for v in vnis)
    assert vni_of("twoisp", 0) != vni_of("clsplit", 0)
    with pytest.raises(LabError, match="links"):
        vni_of("twoisp", 0xfff)


def test_vxlan_overhead_by_underlay_family():
    assert vxlan_overhead("10.0.0.1") == 50 and vxlan_overhead("2001:db8::1") == 70


def test_remote_commands_are_tagged_quoted_and_sudo_only_for_non_root(cluster):
    root = Remote("s1", cluster.servers["s1"], "twoisp", "/run/mhlab/twoisp")
    argv = root.argv(["sh", "-c", "echo 'a b'"])
    assert argv[0] == "ssh" and "root@10.77.0.11" in argv
    assert "ControlPath=/run/mhlab/twoisp/ssh-s1" in argv and "ControlMaster=no" in argv
    remote = shlex.split(argv[-1])
    assert remote[:2] == ["env", "MHLAB_LAB=twoisp"] and remote[-3:] == ["sh", "-c", "echo 'a b'"]
    other = Remote("s2", cluster.servers["s2"], "twoisp")
    argv = other.argv(["true"], tty=True)
    assert argv[:3] == ["ssh", "-F", "/etc/mhlab/ssh_config"] and "-tt" in argv and "lab@10.77.0.12" in argv
    assert shlex.split(argv[-1])[:3] == ["sudo", "-n", "env"]
    assert other.serverctl("sweep")[:3] == ["/opt/mhlab/bin/python", "-m", "testbed.cluster.serverctl"]


def test_a_remote_process_record_round_trips():
    rec = ProcRecord("ra", "anchor", 100, 5, ("sleep", "infinity"), server="s2", rpid=4242)
    assert ProcRecord.from_dict(rec.as_dict()) == rec
    old = {"kind": "proc", "node": "ra", "name": "zebra", "pid": 1, "start": 2, "argv": []}
    assert ProcRecord.from_dict(old).server == "" and ProcRecord.from_dict(old).rpid == 0
