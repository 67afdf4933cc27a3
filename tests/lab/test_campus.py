"""The campus lab (interior routers, three LANs, site IGP) under none, sadr-static and tunnel-mesh: real
pings, curls and a bulk iperf3 transfer from every host address; which ISP each packet leaves through;
ICMPv6 code 5 for the packets no mechanism can place; and tunnel-mesh reacting to ISP B's exit failing."""

import json
from pathlib import Path

import pytest

from testbed.checks import http_get, kernel_routes, ping
from testbed.pytest_plugin import deploy_for_test
from testbed.wait import wait_until

pytestmark = pytest.mark.lab
ACCESS = {"ispa": "ra", "ispb": "rb"}  # ISP -> its exit router on the campus


@pytest.fixture(scope="module", params=["sadr-static", "tunnel-mesh", "none"])
def campus(request):
    mech = request.param
    lab = deploy_for_test(Path(request.config.rootpath) / "topologies/campus.yaml", request.config,
                          name=f"s1c{mech.replace('-', '')[:7]}", mechanism=mech)
    lab.mechanism = mech
    yield lab
    lab.destroy()


def rx_packets(lab, isp: str) -> int:
    """Packets the ISP received from the campus on its access link (the site's packets leaving by it)."""
    ifname = lab.plan.segment(f"{isp}-{ACCESS[isp]}").member(isp).ifname
    return int(lab[isp].run(["cat", f"/sys/class/net/{ifname}/statistics/rx_packets"]).stdout)


def site_hosts(lab) -> list[str]:
    return [h.name for h in lab.net.hosts() if h.owner == "campus"]


def test_every_host_address_reaches_srv_through_its_own_isp(campus):
    lab = campus
    if lab.mechanism == "none":
        pytest.skip("destination-only routing: the next test shows the wrong exits")
    dst = lab.plan.address("srv")
    before = {c: lab.nft_counter(isp, c) for isp in ACCESS for c in lab.net.nodes[isp].counters}
    for host in site_hosts(lab):
        for isp in ACCESS:
            src = lab.plan.address(host, isp)
            other = next(i for i in ACCESS if i != isp)
            rx = {i: rx_packets(lab, i) for i in ACCESS}
            assert lab[host].run(["ping", "-6", "-n", "-q", "-c", "20", "-i", "0.01", "-W", "1", "-I", src, dst],
                                 timeout=10).returncode == 0, f"{host} from {src}"
            moved = {i: rx_packets(lab, i) - rx[i] for i in ACCESS}
            assert moved[isp] >= 20 and moved[other] < 20, (host, isp, moved)
            ok, detail = http_get(lab, host, src, dst)
            assert ok, (host, src, detail)
    after = {c: lab.nft_counter(isp, c) for isp in ACCESS for c in lab.net.nodes[isp].counters}
    assert after == before, "an ISP filter dropped or rejected a packet of these checks"


def test_none_sends_the_wrong_source_to_the_nearest_exit_which_rejects_it_with_code_5(campus):
    lab = campus
    if lab.mechanism != "none":
        pytest.skip("only destination-only routing leaves by the wrong exit")
    dst = lab.plan.address("srv")
    src = lab.plan.address("h1", "ispb")  # h1 is behind c1, nearest exit ra (ISP A)
    before = lab.nft_counter("ispa", "ingress_ra")
    out = lab["h1"].run(["ping", "-6", "-n", "-c", "3", "-i", "0.2", "-W", "1", "-I", src, dst], timeout=10).stdout
    assert "Unknown code 5" in out or "policy" in out, out  # iputils names code 5 "Unknown code 5"
    assert lab.nft_counter("ispa", "ingress_ra") >= before + 3
    assert ping(lab, "h1", lab.plan.address("h1", "ispa"), dst)  # the ISP-A address is fine


def test_tunnel_mesh_carries_full_size_tcp_and_a_1500_byte_path_mtu(campus):
    lab = campus
    if lab.mechanism != "tunnel-mesh":
        pytest.skip("tunnel-mesh only")
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
    if lab.mechanism != "tunnel-mesh":
        pytest.skip("tunnel-mesh only")
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
