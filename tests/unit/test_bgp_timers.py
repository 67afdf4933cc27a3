"""The BGP timers every session is rendered with: FRR's keepalive and hold, a connect retry long enough for a
TCP SYN and its retransmission (2 s), a topology's own values where it sets them, and FRR's own dry run
accepting what is rendered."""

import os
import re
from pathlib import Path

import pytest

from testbed.frr import daemon_path
from testbed.netplan import build_netplan
from testbed.render import render
from testbed.topology import BgpTimers, load_topology

TOPOLOGIES = Path(__file__).resolve().parents[2] / "topologies"


def _bgpd_confs(tmp_path: Path, topology: Path) -> dict[str, str]:
    net = build_netplan(load_topology(topology))
    render(net, tmp_path)
    return {r.name: (tmp_path / "nodes" / r.name / "bgpd.conf").read_text()
            for r in net.routers() if "bgpd" in r.frr_daemons}


def _timers(conf: str) -> tuple[list[str], list[tuple[str, str]]]:
    """(the router's `timers bgp` lines, (neighbor, connect seconds) of every neighbor)."""
    return (re.findall(r"^ timers bgp (\d+ \d+)$", conf, re.M),
            re.findall(r"^ neighbor (\S+) timers connect (\d+)$", conf, re.M))


def test_the_default_connect_retry_outlives_a_syn_retransmission():
    assert BgpTimers().connect == 2 and (BgpTimers().keepalive, BgpTimers().hold) == (60, 180)


@pytest.mark.parametrize("topology", ["two-isp-site.yaml", "two-sites-shim.yaml"])
def test_every_session_of_the_soaked_labs_gets_the_default_timers(tmp_path, topology):
    confs = _bgpd_confs(tmp_path, TOPOLOGIES / topology)
    assert len(confs) >= 5
    for router, conf in confs.items():
        bgp, connects = _timers(conf)
        neighbors = re.findall(r"^ neighbor (\S+) remote-as ", conf, re.M)
        assert bgp == ["60 180"], router
        assert neighbors and sorted(connects) == sorted((n, "2") for n in neighbors), router


def test_a_topology_sets_its_own_timers(tmp_path):
    text = (TOPOLOGIES / "two-isp-site.yaml").read_text() + "bgp:\n  keepalive: 5\n  hold: 15\n  connect: 5\n"
    path = tmp_path / "t.yaml"
    path.write_text(text)
    for router, conf in _bgpd_confs(tmp_path / "out", path).items():
        bgp, connects = _timers(conf)
        assert bgp == ["5 15"] and connects and {c for _, c in connects} == {"5"}, router


needs_frr = pytest.mark.skipif(not daemon_path("bgpd").exists() or os.geteuid() != 0,
                               reason="FRR missing, or not root (the dry run switches to user frr)")


@needs_frr
@pytest.mark.parametrize("topology", ["two-isp-site.yaml", "two-sites-shim.yaml"])
def test_frr_accepts_the_rendered_timers(frr_readable, frr_dry_run, topology):
    for router in _bgpd_confs(frr_readable, TOPOLOGIES / topology):
        conf = frr_readable / "nodes" / router / "bgpd.conf"
        assert not frr_dry_run(conf), f"{router}: {conf.read_text()}"


@needs_frr
def test_frr_dry_run_rejects_a_connect_retry_out_of_range(frr_readable, frr_dry_run):
    """The dry run above can fail: FRR refuses a connect retry of 0."""
    confs = _bgpd_confs(frr_readable, TOPOLOGIES / "two-isp-site.yaml")
    conf = frr_readable / "nodes" / "ra" / "bgpd.conf"
    conf.write_text(re.sub(r"timers connect \d+", "timers connect 0", confs["ra"]))
    assert frr_dry_run(conf)
