"""The lab-kind registry (plug-ins found by discovery), the NetPlan fields the runtime reads, the polling
helper, and the --name rule - all without root."""

import subprocess
import sys
import time
from pathlib import Path

import pytest


from testbed.errors import TopologyError, UsageError
from testbed.i2p.topology import I2pLab
from testbed.kinds import KindError, discover, kind_of, kinds, load_lab, netplan_for
from testbed.kinds.contract import LabKind
from testbed.lab import check_lab_name
from testbed.topology import Topology
from testbed.wait import WaitTimeout, wait_until
from testbed.yamlmarks import load_marked

ROOT = Path(__file__).resolve().parents[2]


def test_registry_finds_every_kind_module():
    registry = kinds()
    assert set(registry.names()) == {"multihoming", "i2p"}
    assert registry.implicit.name == "multihoming"
    assert all(isinstance(k, LabKind) for k in registry.by_name.values())
    with pytest.raises(TypeError):
        registry.by_name["x"] = registry.implicit  # a value, not a mutable global
    with pytest.raises(KindError, match="known: i2p, multihoming"):
        registry.get("nope")


def test_a_kind_is_one_module(tmp_path):
    """Discovery registers whatever module defines KIND: adding a kind touches nothing else."""
    pkg = tmp_path / "cbkinds"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "toy.py").write_text("from testbed.kinds.contract import LabKind\n"
                                "KIND = LabKind('toy', 'a toy', dict, dict, dict, implicit=True)\n")
    sys.path.insert(0, str(tmp_path))
    try:
        assert discover("cbkinds", pkg).names() == ["toy"]
    finally:
        sys.path.remove(str(tmp_path))


def test_kind_of_models_and_their_netplans():
    topo = load_lab(ROOT / "topologies/two-isp-site.yaml")
    i2p = load_lab(ROOT / "topologies/i2p-invisible-multihoming.yaml")
    assert isinstance(topo, Topology) and kind_of(topo).name == "multihoming"
    assert isinstance(i2p, I2pLab) and kind_of(i2p).name == "i2p"
    net = netplan_for(topo)
    assert net.bgp_timers is topo.bgp
    assert set(net.await_routes) == {"core", "ispa", "ispb"}
    assert sorted(net.await_routes["core"]) == sorted(str(p) for p in net.plan.aggregates.values())
    assert net.address_spaces == ["core", "ispa", "ispb"]
    assert [r.name for r in kind_of(topo).readiness(net)] == ["BGP convergence", "data plane"]
    inet = netplan_for(i2p)
    assert inet.bgp_timers is None and inet.await_routes == {} and inet.address_spaces == []
    assert [h.name for h in inet.hooks] == ["bootstrap the private I2P network (reseed zip, restart)"]
    assert [r.name for r in kind_of(i2p).readiness(inet)] == ["the Destination's LeaseSet"]


def test_unknown_kind_names_the_line(tmp_path):
    path = tmp_path / "lab.yaml"
    path.write_text("name: x\nkind: tor\n")
    with pytest.raises(TopologyError) as exc:
        load_lab(path)
    assert f"{path}:2: kind: unknown lab kind 'tor'; known: i2p, multihoming" in str(exc.value)
    assert load_marked(path).data["kind"] == "tor"


def test_wait_until_returns_the_last_value():
    values = iter([0, 0, 3])
    assert wait_until(lambda: next(values), 5, 0.001) == 3
    assert wait_until(lambda: [], 1, 0.001, ok=lambda v: v == []) == []


def test_wait_until_names_what_it_awaited():
    t0 = time.monotonic()
    with pytest.raises(WaitTimeout) as exc:
        wait_until(lambda: ["ra lacks 2001:db8::/32"], 0.05, 0.01, what="BGP convergence", ok=lambda p: not p)
    assert time.monotonic() - t0 >= 0.05
    assert str(exc.value) == "BGP convergence: not reached within 0.05 s (last: ra lacks 2001:db8::/32)"
    assert exc.value.last == ["ra lacks 2001:db8::/32"]


def test_wait_until_min_timeout_and_ignored_errors():
    t0 = time.monotonic()
    with pytest.raises(WaitTimeout) as exc:
        wait_until(lambda: open("/nonexistent/cb"), 0.0, 0.01, min_timeout=0.1, ignore=(OSError,))
    assert time.monotonic() - t0 >= 0.1 and isinstance(exc.value.last, OSError)
    with pytest.raises(ZeroDivisionError):  # not ignored: raised at once
        wait_until(lambda: 1 / 0, 5, 0.01, ignore=(OSError,))


@pytest.mark.parametrize("name", ["Bad_name", "1abc", "abcdefghijk", ""])
def test_bad_lab_names(name):
    with pytest.raises(UsageError, match="not a valid lab name"):
        check_lab_name(name)


def test_cli_rejects_a_bad_name_before_anything(tmp_path):
    for verb in ("deploy",):
        res = subprocess.run([sys.executable, "-m", "testbed.cli", "--run-root", str(tmp_path), verb,
                              str(ROOT / "topologies/two-isp-site.yaml"), "--name", "Bad_name"],
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 2
        assert res.stderr.strip().count("\n") == 0 and "not a valid lab name" in res.stderr
        assert list(tmp_path.iterdir()) == []


def test_data_plane_readiness_awaits_every_usable_source_to_every_server():
    """`lab up` means every host reaches every server from each address its mechanism makes usable:
    both ISPs' with source routing, only the gateway's ISP with `none` (the other is dropped by design)."""
    topo = load_lab(ROOT / "topologies/two-isp-site.yaml")
    ready = {r.name: r for r in kind_of(topo).readiness(netplan_for(topo))}
    assert ready["data plane"].targets(None) == [f"{h} -> srv from its {isp} address"
                                                 for h in ("h1", "h2") for isp in ("ispa", "ispb")]
    none = topo.with_mechanism("none")
    ready = {r.name: r for r in kind_of(none).readiness(netplan_for(none))}
    assert ready["data plane"].targets(None) == ["h1 -> srv from its ispa address", "h2 -> srv from its ispa address"]
    assert "ispa->core" in ready["BGP convergence"].targets(netplan_for(none))
