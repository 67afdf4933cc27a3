"""The dns add-on, pure: the zone it generates from the address plan, the LUA records that order a whole
RRset by weight, every node's resolv.conf, and every wrong option reported at its file:line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from testbed.errors import TopologyError
from testbed.mechanisms.dns import first_weights, ordered_rrset
from testbed.netplan import build_netplan
from testbed.render import render
from testbed.topology import load_topology

ROOT = Path(__file__).resolve().parents[3]
LAB = ROOT / "topologies" / "dns-two-isp.yaml"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dns")
    render(build_netplan(load_topology(LAB)), out)
    return out / "nodes"


def test_the_zone_has_every_address_of_every_host(rendered):
    zone = (rendered / "ns" / "lab.example.zone").read_text()
    assert "@ IN NS ns.lab.example." in zone and "ns IN AAAA 2001:db8:f000::10" in zone
    for host, addr in [("srv", "2001:db8:f000::11"), ("c1", "2001:db8:f000::12"), ("ca", "2001:db8:a000::10")]:
        assert f"\n{host} IN AAAA {addr}\n" in zone
    h1 = next(line for line in zone.splitlines() if line.startswith("h1 IN LUA AAAA"))
    assert "2001:db8:a001:1::10" in h1 and "2001:db8:b001:1::10" in h1
    assert "pickwrandom({{70, 'ispa'}, {30, 'ispb'}})" in h1, "h1: ISP A first in 70 % of the answers"
    assert "pickwrandom({{50, 'ispa'}, {50, 'ispb'}})" in zone, "h2 has no weight: each ISP first half the time"
    assert "\nh1.ispb IN AAAA 2001:db8:b001:1::10\n" in zone
    assert "_http._tcp.h1 IN SRV 0 70 80 h1.ispa" in zone and "_http._tcp.h1 IN SRV 0 30 80 h1.ispb" in zone
    assert "_http._tcp.h2" not in zone


def test_the_server_keeps_the_order_and_draws_every_query(rendered):
    conf = (rendered / "ns" / "pdns.conf").read_text()
    for line in ("enable-lua-records=yes", "no-shuffle=yes", "cache-ttl=0", "query-cache-ttl=0", "launch=bind"):
        assert f"\n{line}\n" in conf
    assert re.search(r"bind-config=/\S+/nodes/ns/named.conf", conf)
    assert (rendered / "ns" / "services.txt").read_text().startswith("pdns: pdns_server")


def test_every_node_resolves_through_the_server(rendered):
    for node in ("h1", "c1", "ca", "ra", "ispb", "core", "ns"):
        text = (rendered / node / "resolv.conf").read_text()
        assert "\nnameserver 2001:db8:f000::10\nsearch lab.example\n" in text
    assert not (rendered / "br_site-lan" / "resolv.conf").exists()


def test_lua_order_puts_the_drawn_isp_first_and_keeps_every_address():
    addrs = {"ispa": ["2001:db8:a001:1::10"], "ispb": ["2001:db8:b001:1::10"], "ispc": ["2001:db8:c001:1::10"]}
    isps = ["ispa", "ispb", "ispc"]
    lua = ordered_rrset(addrs, isps, first_weights({"ispb": 100}, isps))
    assert lua == "AAAA \"{'2001:db8:b001:1::10', '2001:db8:a001:1::10', '2001:db8:c001:1::10'}\"", \
        "one ISP at 100 %: a fixed order, no draw"
    assert first_weights(70, isps) == {"ispa": 70, "ispb": 15, "ispc": 15}
    assert first_weights(None, ["ispa", "ispb"]) == {"ispa": 50, "ispb": 50}
    drawn = ordered_rrset(addrs, isps, first_weights({"ispa": 60, "ispc": 40}, isps))
    assert "'ispb'}" not in drawn and "{60, 'ispa'}, {40, 'ispc'}" in drawn, "a 0 % ISP is never drawn"


def _lab(tmp_path: Path, options: str, isps_hosts: bool = True) -> Path:
    text = LAB.read_text().replace("          zone: lab.example\n          weights: {h1: 70}\n", options)
    if not isps_hosts:
        text = re.sub(r"    hosts:\n(      - .*\n)+", "", text).replace("    hosts: [ca]\n", "").replace(
            "    hosts: [cb]\n", "")
    path = tmp_path / "dns.yaml"
    path.write_text(text)
    return path


def _line(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


@pytest.mark.parametrize("options,needle,words", [
    ("          weights: {h9: 70}\n", "weights", "sites.0.addons.0.options.weights.h9: 'h9' is not a host of site "
                                                  "site (its hosts: h1, h2)"),
    ("          weights: {h1: {ispa: 70, ispz: 30}}\n", "weights",
     "sites.0.addons.0.options.weights.h1.ispz: 'ispz' is not an ISP of site site (ispa, ispb)"),
    ("          weights: {h1: 120}\n", "weights", "h1: 120 is not a percentage (0-100)"),
    ("          weights: {h1: {ispa: 70, ispb: 20}}\n", "weights", "h1: the ISPs' percentages add up to 90, not 100"),
    ("          server: h2\n", "server", "sites.0.addons.0.options.server: 'h2' is not a host behind an ISP; "
                                         "those are: ns, srv, c1, ca, cb"),
    ("          zone: lab.com\n", "zone", "sites.0.addons.0.options.zone: 'lab.com' is not under a reserved domain"),
    ("          zone: Bad_Name.example\n", "zone", "is not a domain name"),
    ("          ttl: -1\n", "ttl", "sites.0.addons.0.options.ttl"),
])
def test_wrong_options_name_their_line(tmp_path, options, needle, words):
    path = _lab(tmp_path, options)
    with pytest.raises(TopologyError) as err:
        load_topology(path)
    assert f"{path}:{_line(path, needle)}: " in str(err.value) and words in str(err.value)


def test_a_lab_without_hosts_behind_an_isp_has_nowhere_to_run_the_server(tmp_path):
    path = _lab(tmp_path, "          zone: lab.example\n", isps_hosts=False)
    with pytest.raises(TopologyError) as err:
        load_topology(path)
    assert f"{path}:{_line(path, '- mechanism: dns')}: sites.0.addons.0: the dns add-on runs its authoritative " \
           "server on a host behind an ISP, and this lab has none" in str(err.value)
