"""``tunnel-mesh`` on the campus lab: every host address leaves through its own ISP and ISP B's failures
spare ISP A (campus_cases); full-size TCP segments and 1500-byte packets cross the tunnel; with no exit
of ISP B left, ra rejects ISP-B sources with ICMPv6 code 5 itself."""

import json

import pytest

from campus_cases import (campus_lab, test_every_host_address_reaches_srv_through_its_own_isp,  # noqa: F401
                          test_isp_b_access_link_down_tells_the_host_and_spares_isp_a,
                          test_isp_b_exit_router_crash_tells_the_host_and_spares_isp_a)
from testbed.checks import kernel_routes, ping
from testbed.wait import wait_until

pytestmark = pytest.mark.lab
ACCESS = {"ispa": "ra", "ispb": "rb"}  # ISP -> its exit router on the campus
campus = campus_lab("tunnel-mesh")


def rx_packets(lab, isp: str) -> int:
    """Packets the ISP received from the campus on its access link (the site's packets leaving by it)."""
    ifname = lab.plan.segment(f"{isp}-{ACCESS[isp]}").member(isp).ifname
    return int(lab[isp].run(["cat", f"/sys/class/net/{ifname}/statistics/rx_packets"]).stdout)


def test_tunnel_mesh_carries_full_size_tcp_and_a_1500_byte_path_mtu(campus):
    lab = campus
    dst, src = lab.plan.address("srv"), lab.plan.address("h1", "ispb")  # h1 -> ra -> tunnel -> rb -> ispb
    res = lab["h1"].run(["ping", "-6", "-n", "-q", "-c", "3", "-i", "0.1", "-M", "do", "-s", "1452", "-I", src, dst],
                        timeout=10)
    assert res.returncode == 0, res.stdout  # a 1500-byte packet crosses the tunnel whole
    rx = rx_packets(lab, "ispb")
    res = lab["h1"].run(["iperf3", "-6", "-c", dst, "-B", src, "-t", "2", "-J"], timeout=30)
    assert res.returncode == 0, res.stdout[-500:]
    end = json.loads(res.stdout)["end"]
    assert end["sum_received"]["bytes"] > 10_000_000, end["sum_received"]
    assert rx_packets(lab, "ispb") - rx > 1000  # the bulk left through ISP B


def test_tunnel_mesh_rejects_with_code_5_when_isp_b_exit_is_gone_and_recovers(campus):
    lab = campus
    dst, src_b, src_a = lab.plan.address("srv"), lab.plan.address("h1", "ispb"), lab.plan.address("h1", "ispa")
    anycast_b = "2001:db8:b001:ffff:ffff:ffff:ffff:ffff/128"
    rb = lab["rb"]
    rb.run(["ip", "link", "set", "dev", "ispb", "down"], check=True)
    try:
        wait_until(lambda: not any(r["dst"] == anycast_b for r in kernel_routes(lab, "ra")), 10, 0.05,
                   what="ra losing the anycast of ISP B's exit")
        before = noexit(lab)
        out = lab["h1"].run(["ping", "-6", "-n", "-c", "2", "-i", "0.2", "-W", "1", "-I", src_b, dst], timeout=10).stdout
        assert "Unknown code 5" in out or "policy" in out, out
        assert noexit(lab) >= before + 1  # rejected at ra, the nearest exit
        assert ping(lab, "h1", src_a, dst)
    finally:
        rb.run(["ip", "link", "set", "dev", "ispb", "up"], check=True)
    wait_until(lambda: ping(lab, "h1", src_b, dst, wait=0.5), 30, 0.2, what="ISP-B traffic recovering")


def noexit(lab) -> int:
    out = lab["ra"].run(["nft", "list", "counter", "ip6", "mhlab_tunnel_ispa", "noexit_ispa"]).stdout
    return int(out.split("packets")[1].split()[0])
