"""`mhlab inspect` of a lab across servers shows each node's server, from the run directory's records alone
(the anchors' journal records, else ``cluster.json``'s placement); a one-machine lab's output is unchanged.
No root: the run directory is written by hand as deploy would and the lab is down (no live process)."""

from __future__ import annotations

from pathlib import Path

from testbed.cluster.build import ClusterRun
from testbed.cluster.model import Cluster
from testbed.inspect import inspect_lab, inspect_text
from testbed.lab import Lab
from testbed.procs import ProcRecord
from testbed.rundir import RunDir

ROOT = Path(__file__).resolve().parents[2]
PLACE = {"s1": ["core", "srv", "ispa", "ispb"], "s2": ["ra", "rb", "h1", "h2"]}
DEAD_PID = 2 ** 22 + 1  # above pid_max's ceiling: never a live process


def _run_dir(root: Path, name: str, cluster: Cluster | None, anchors: dict[str, str]) -> RunDir:
    """A down lab's run directory as deploy leaves it: meta, topology, journal (anchors with the server
    each was started on), and ``cluster.json`` for a lab across servers."""
    rundir = RunDir.of(name, root)
    rundir.create({"name": name, "status": "up"})
    (rundir.path / "topology.yaml").write_text((ROOT / "topologies" / "two-isp-site.yaml").read_text())
    if cluster is not None:
        net = Lab.attach(name, root).net  # the LAN bridges with their members, as ClusterRun.prepare saves them
        bridges = {b: [l.a for l in net.links if l.b == b] for b in net.nodes if b.startswith("br:")}
        ClusterRun(cluster, rundir, bridges, 1500, list(net.nodes)).save()
    for node, server in anchors.items():
        rundir.record(ProcRecord(node, "anchor", DEAD_PID, 1, ("sleep", "infinity"), server, 4242).as_dict())
    return rundir


def _cluster() -> Cluster:
    return Cluster.model_validate({"servers": {"s1": {"host": "10.78.0.11"},
                                               "s2": {"host": "10.78.0.12", "underlay": "10.79.0.12"}},
                                   "place": PLACE})


def test_each_node_shows_the_server_it_was_started_on(tmp_path):
    anchors = {n: s for s, nodes in PLACE.items() for n in nodes}
    anchors["h2"] = "s1"  # started elsewhere than the file places it (`--place h2=s1`): the journal wins
    del anchors["ispb"]  # never started: the saved placement tells
    _run_dir(tmp_path, "skclu", _cluster(), anchors)
    data = inspect_lab(Lab.attach("skclu", tmp_path))
    servers = {n["name"]: n["server"] for n in data["nodes"]}
    assert servers["core"] == "s1" and servers["ra"] == "s2" and servers["h2"] == "s1"
    assert servers["ispb"] == "s1"
    assert servers["br:site-lan"] == "s2"  # a bridge unplaced goes with most of its members
    assert [(s["name"], s["dest"], s["underlay"]) for s in data["servers"]] == \
        [("s1", "root@10.78.0.11", "10.78.0.11"), ("s2", "root@10.78.0.12", "10.79.0.12")]
    on = {s["name"]: s["nodes"] for s in data["servers"]}
    assert sorted(on["s1"]) == ["br:core-hosts", "core", "h2", "ispa", "ispb", "srv"]
    assert sorted(on["s2"]) == ["br:site-lan", "h1", "ra", "rb"]

    lines = inspect_text(data).splitlines()
    assert lines[2].split() == ["server", "ssh", "underlay", "nodes"]
    s1 = next(line for line in lines if line.startswith("s1 "))
    assert s1.split(None, 3)[:3] == ["s1", "root@10.78.0.11", "10.78.0.11"] and "h2" in s1
    header = next(line for line in lines if line.startswith("node ") and "interface" in line)
    assert header.split() == ["node", "role", "owner", "server", "interface", "addresses"]
    col = header.index("server")
    rows = {line.split()[0]: line for line in lines[lines.index(header) + 1:] if line.strip()}
    assert rows["h2"][col:].split()[0] == "s1" and rows["ra"][col:].split()[0] == "s2"
    assert "br:site-lan" not in rows  # bridges stay out of the node table, as on one machine


def test_a_one_machine_lab_has_no_server_field_or_column(tmp_path):
    _run_dir(tmp_path, "skone", None, {"ra": "", "h1": ""})
    data = inspect_lab(Lab.attach("skone", tmp_path))
    assert "servers" not in data and not any("server" in n for n in data["nodes"])
    text = inspect_text(data)
    assert "server" not in text and "ssh" not in text
    header = next(line for line in text.splitlines() if line.startswith("node ") and "interface" in line)
    assert header.split() == ["node", "role", "owner", "interface", "addresses"]
