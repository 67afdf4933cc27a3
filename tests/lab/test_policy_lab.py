"""The policy add-on in a running lab: every host applies the DHCPv6-distributed table, new connections
split between the ISPs exactly as the table says (counted at the ISPs), the port row sends bulk through
ISP B, a change at the server reaches every host within the refresh time, and a server that cannot start
fails the deploy naming its node."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import pytest

from testbed.errors import LabError
from testbed.lab import Lab
from testbed.mechanisms.policy import PolicyOptions, Split, split_slices
from testbed.te_runtime import add_addresses, connect_many, measure_split, push_policy, site_exits, wait_applied

pytestmark = pytest.mark.lab
LAB = Path(__file__).resolve().parents[2] / "topologies" / "two-isp-site-policy.yaml"
SRV_NET = "2001:db8:f000::/64"
REFRESH_S = 5


@pytest.fixture(scope="module")
def lab(request):
    lab = Lab.deploy(LAB, name="popt", root=request.config.getoption("--mhlab-run-root"))
    yield lab
    lab.destroy()


def _share_a(weights: dict[str, int], dests: list[str]) -> float:
    slices = [n for n, isp in split_slices(ipaddress.IPv6Network(SRV_NET), weights, 4) if isp == "ispa"]
    return round(100 * sum(any(ipaddress.IPv6Address(d) in s for s in slices) for d in dests) / len(dests), 1)


def test_split_by_prefix_matches_the_table_at_the_isps(lab):
    dests = add_addresses(lab, "srv", SRV_NET, 40)
    split = measure_split(lab, site_exits(lab, "site"), "out", lambda: [connect_many(lab, h, dests, 80)
                                                                        for h in ("h1", "h2")])
    # SYNs are counted, so a retransmitted one counts twice: allow eight in 160 (a loaded machine retransmits)
    assert abs(split["ispa"] - _share_a({"ispa": 70, "ispb": 30}, dests)) <= 5.0, split
    assert 40 <= split["ispa"] <= 95, "random destinations: roughly 11 of 16 slices through A"


def test_the_port_row_sends_bulk_through_isp_b(lab):
    srv = lab.plan.address("srv")  # in an ISP-A slice: web to it leaves through A
    exits = site_exits(lab, "site")
    assert measure_split(lab, exits, "out", lambda: connect_many(lab, "h1", [srv] * 5, 80)) == {"ispa": 100.0, "ispb": 0.0}
    assert measure_split(lab, exits, "out", lambda: connect_many(lab, "h1", [srv] * 5, 5201)) == {"ispa": 0.0, "ispb": 100.0}


def test_a_change_at_the_server_reaches_every_host_within_the_refresh(lab):
    flipped = PolicyOptions(refresh_s=REFRESH_S, rules=[{"isp": "ispb", "proto": "tcp", "ports": "5201"}],
                            split=Split(dst=SRV_NET, weights={"ispa": 30, "ispb": 70}))
    t0, table = push_policy(lab, "site", flipped)
    applied = wait_applied(lab, ["h1", "h2"], table, timeout=REFRESH_S + 5)
    assert max(applied.values()) - t0 <= REFRESH_S + 1.0, applied
    dests = add_addresses(lab, "srv", SRV_NET, 20, seed=11)
    split = measure_split(lab, site_exits(lab, "site"), "out", lambda: connect_many(lab, "h2", dests, 80))
    assert abs(split["ispa"] - _share_a({"ispa": 30, "ispb": 70}, dests)) <= 5.0, split  # one retransmit in 20


def test_a_server_that_cannot_start_fails_the_deploy_naming_its_node(request, tmp_path, monkeypatch):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "dnsmasq").write_text("#!/bin/sh\necho 'dnsmasq: unknown interface lan' >&2\nexit 3\n")
    (fake / "dnsmasq").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    with pytest.raises(LabError, match=r"node ra: service dhcp6-policy exited \(3\) before it was ready: "
                                       r"dnsmasq: unknown interface lan"):
        Lab.deploy(LAB, name="popf", root=request.config.getoption("--mhlab-run-root"))
