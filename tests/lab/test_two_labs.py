"""One Python process holds two labs built at the same time (two threads): every node's anchor and every
process carries its own lab's tag, so destroying one lab leaves the other whole - also two labs of the same
name in two run roots (parallel test workers, ``--run-root``)."""

import os
import threading
from pathlib import Path

import pytest

from testbed.checks import ping
from testbed.lab import Lab
from testbed.procs import is_alive, tagged_pids
from testbed.rundir import run_root

pytestmark = pytest.mark.lab
TOPO = Path(__file__).resolve().parents[2] / "topologies" / "two-isp-site.yaml"


def _tag(pid: int, key: bytes = b"MHLAB_LAB") -> str | None:
    env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return next((e.split(b"=", 1)[1].decode() for e in env if e.startswith(key + b"=")), None)


def test_two_labs_deployed_at_once():
    labs: dict[str, Lab] = {}
    errors: list[BaseException] = []

    def deploy(name: str) -> None:
        try:
            labs[name] = Lab.deploy(TOPO, name=name)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=deploy, args=(n,)) for n in ("cbpair1", "cbpair2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    try:
        assert not errors, errors
        for name, lab in labs.items():
            namespaces = {os.readlink(f"/proc/{h.pid}/ns/net") for h in lab.nodes.values()}
            for pid in tagged_pids(name):
                try:
                    assert os.readlink(f"/proc/{pid}/ns/net") in namespaces, (name, pid)
                except FileNotFoundError:
                    continue  # exited meanwhile
            anchors = 0
            for rec in lab.rundir.procs():
                if rec.name != "shell" and os.path.exists(f"/proc/{rec.pid}"):
                    assert _tag(rec.pid) == name, (name, rec)  # every node's anchor and every daemon
                    assert _tag(rec.pid, b"MHLAB_LAB_DIR") == str(lab.rundir.path), (name, rec)
                    anchors += rec.name == "anchor"
            assert anchors == len(lab.nodes), (name, anchors)
            assert ping(lab, "h1", lab.plan.address("h1", "ispb"), lab.plan.address("srv"))
        labs["cbpair1"].destroy()
        assert tagged_pids("cbpair1") == {}
        second = labs["cbpair2"]
        assert ping(second, "h1", second.plan.address("h1", "ispa"), second.plan.address("srv"))
    finally:
        for lab in labs.values():
            if lab.rundir.path.exists():
                lab.destroy()


def test_a_lab_of_the_same_name_in_another_run_root_survives_a_destroy():
    roots = [run_root(), run_root().with_name(run_root().name + "-twin")]
    labs = [Lab.deploy(TOPO, name="cbsame", root=root) for root in roots]
    try:
        labs[0].destroy()
        survivor = labs[1]
        dead = [rec for rec in survivor.rundir.procs() if rec.name != "shell" and not is_alive(rec)]  # shells end at deploy
        assert not dead, f"destroying cbsame in {roots[0]} stopped the twin's {dead}"
        assert ping(survivor, "h1", survivor.plan.address("h1", "ispa"), survivor.plan.address("srv"))
    finally:
        for lab in labs:
            if lab.rundir.path.exists():
                lab.destroy()
        if roots[1].exists() and not any(roots[1].iterdir()):
            roots[1].rmdir()
