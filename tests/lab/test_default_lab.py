"""The default lab on real kernels: BGP up, both source addresses reach srv (ping and TCP), no NAT, PA only."""

import json
import subprocess
import sys

import pytest

from testbed.checks import http_get, ping
from testbed.pytest_plugin import wait_json

pytestmark = [pytest.mark.lab, pytest.mark.mhlab_topology("topologies/two-isp-site.yaml", name="tdefault")]


def test_all_bgp_sessions_established(lab):
    sessions = lab.bgp_sessions()
    assert set(sessions) == {"core", "ispa", "ispb", "ra", "rb"}
    assert all(state == "Established" for peers in sessions.values() for state in peers.values()), sessions
    wait_json(lab, "ra", "show bgp summary json", {"ipv6Unicast": {"peers": {"2001:db8:a000::1": {
        "state": "Established", "pfxRcd": 1}}}})


@pytest.mark.parametrize("isp", ["ispa", "ispb"])
def test_h1_reaches_srv_from_each_address(lab, isp):
    src, dst = lab.plan.address("h1", isp), lab.plan.address("srv")
    assert ping(lab, "h1", src, dst, count=2)
    ok, detail = http_get(lab, "h1", src, dst)
    assert ok, detail


def test_srv_sees_the_source_h1_chose(lab):
    for isp in ("ispa", "ispb"):
        src = lab.plan.address("h1", isp)
        assert http_get(lab, "h1", src, lab.plan.address("srv"))[0]
        log = (lab["srv"].dir / "http.out").read_text()
        assert f"{src} - - " in log, f"srv's HTTP log does not show {src} (NAT?):\n{log[-500:]}"


def test_sadr_routes_installed_in_the_kernel(lab):
    out = lab["ra"].run(["ip", "-6", "route", "show", "default"]).stdout
    assert "default from 2001:db8:b001::/48 via 2001:db8:a001:f000::2 dev rb" in out
    assert "default from 2001:db8:a001::/48 via 2001:db8:a000::1 dev ispa" in out


def test_core_sees_only_aggregates(lab):
    routes = lab.vtysh_json("core", "show bgp ipv6 unicast json")["routes"]
    assert set(routes) == {"2001:db8:f000::/40", "2001:db8:a000::/40", "2001:db8:b000::/40"}
    assert lab.nft_counter("ispa", "ingress_ra") == 0


def test_cli_inspect_and_exec(lab):
    base = [sys.executable, "-m", "testbed.cli"]
    res = subprocess.run(base + ["inspect", lab.name, "--json"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    h1 = next(n for n in data["nodes"] if n["name"] == "h1")
    addrs = [a.split("/")[0] for i in h1["interfaces"] for a in i["addresses"]]
    assert sorted(addrs) == sorted(a for v in lab.plan.addresses("h1").values() for a in v)
    ra = next(n for n in data["nodes"] if n["name"] == "ra")
    assert {p["name"] for p in ra["processes"] if p["running"]} >= {"zebra", "bgpd"}
    res = subprocess.run(base + ["exec", lab.name, "h1", "--", "ip", "-6", "-o", "addr", "show", "dev", "lan"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0 and lab.plan.address("h1", "ispb") in res.stdout
    res = subprocess.run(base + ["exec", lab.name, "h1", "--", "false"], capture_output=True, timeout=30)
    assert res.returncode == 1


def test_cli_check_passes_with_no_ingress_drop(lab):
    res = subprocess.run([sys.executable, "-m", "testbed.cli", "check", lab.name, "--json"], capture_output=True,
                         text=True, timeout=120)
    checks = {c["name"]: c for c in json.loads(res.stdout)}
    assert res.returncode == 0, [c for c in checks.values() if not c["ok"]]
    assert checks["ingress filter ispa/ingress_ra"]["ok"] and checks["ingress filter ispb/ingress_rb"]["ok"]
    assert checks["curl h1 -> srv from its ispb address"]["ok"]
