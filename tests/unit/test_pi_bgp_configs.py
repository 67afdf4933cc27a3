"""Mechanism pi-bgp on the PI lab, without root: the plan, the netplan and the rendered configs."""

import ipaddress
from pathlib import Path

import pytest

from testbed.addressing import PI_POOL
from testbed.generate import n_sites
from testbed.netplan import build_netplan
from testbed.render import render
from testbed.scenario.flows import plan_flows
from testbed.scenario.load import load_scenario
from testbed.scenario.resolve import PlannedLab, resolve
from testbed.topology import load_topology

TOPO = Path(__file__).resolve().parents[2] / "topologies"
SCEN = TOPO.parent / "scenarios"
PI = "2001:db8:ff00::/48"


@pytest.fixture(scope="module")
def net():
    return build_netplan(load_topology(TOPO / "two-isp-site-pi.yaml"))


def _nbr(net, node, peer):
    return next(n for n in net.nodes[node].bgp.neighbors if n.peer == peer)


def test_pi_prefix_and_host_addresses(net):
    plan = net.plan
    assert str(plan.pi_prefixes["site"]) == PI and plan.pi_prefixes["site"].subnet_of(PI_POOL)
    h1 = plan.addresses("h1")
    assert list(h1) == ["pi", "ispa", "ispb"]  # the PI address comes first: the default source
    assert plan.address("h1") == plan.address("h1", "pi") == "2001:db8:ff00:1::10"
    assert not any(ipaddress.IPv6Network(PI).overlaps(agg) for agg in plan.aggregates.values())


def test_every_exit_announces_the_pi_prefix_and_every_isp_passes_it_up(net):
    for router, isp in (("ra", "ispa"), ("rb", "ispb")):
        assert PI in net.nodes[router].bgp.networks
        assert any(r.dst == PI and r.kind == "blackhole" for r in net.nodes[router].routes)
        assert PI in _nbr(net, router, isp).export
        assert PI in _nbr(net, isp, router).accept
        assert _nbr(net, isp, "core").export == [str(net.plan.aggregates[isp]), PI]  # no PA /48 leaks
        assert _nbr(net, "core", isp).accept == [str(net.plan.aggregates[isp]), PI]


def test_exit_routers_run_ibgp_with_next_hop_self(net):
    ra_rb = _nbr(net, "ra", "rb")
    assert (ra_rb.relation, ra_rb.remote_as, ra_rb.next_hop_self) == ("internal", 65100, True)
    assert ra_rb.address == "2001:db8:ff00:f000::2"  # rb's PI address on the internal link
    assert ra_rb.accept == ra_rb.export == ["::/0"]  # they trade the ISPs' default routes only
    assert _nbr(net, "rb", "ra").address == "2001:db8:ff00:f000::1"


def test_pa_addresses_keep_working_through_their_own_isp(net):
    sadr = {r.src for r in net.nodes["ra"].routes if r.src}
    assert sadr == {str(p) for p in net.plan.site_prefixes["site"].values()}


def test_render_pi_configs(tmp_path, net):
    render(net, tmp_path)
    ra = (tmp_path / "nodes/ra/bgpd.conf").read_text()
    assert "ipv6 prefix-list to-ispa seq 10 permit 2001:db8:ff00::/48" in ra
    assert " neighbor 2001:db8:ff00:f000::2 remote-as 65100" in ra
    assert "  neighbor 2001:db8:ff00:f000::2 next-hop-self" in ra
    assert "bfd" not in ra and not (tmp_path / "nodes/ra/bfdd.conf").exists()
    core = (tmp_path / "nodes/core/bgpd.conf").read_text()
    assert "ipv6 prefix-list from-ispb seq 10 permit 2001:db8:ff00::/48" in core
    nft = (tmp_path / "nodes/ispa/ruleset.nft").read_text()
    assert ('iifname "ra" ip6 saddr != { 2001:db8:a001::/48, 2001:db8:a000::/64, 2001:db8:ff00::/48 } '
            "counter name ingress_ra drop") in nft


def test_bfd_topology_starts_bfdd_everywhere(tmp_path):
    net = build_netplan(load_topology(TOPO / "two-isp-site-pi-bfd.yaml"))
    assert all(r.frr_daemons[-1] == "bfdd" for r in net.routers())
    render(net, tmp_path)
    assert "detect-multiplier 3" in (tmp_path / "nodes/ispa/bfdd.conf").read_text()
    bgpd = (tmp_path / "nodes/ra/bgpd.conf").read_text()
    assert "timers bgp 1 3" in bgpd and bgpd.count("bfd profile mhlab") == 2  # eBGP and iBGP


def test_generated_sites_each_get_a_pi_route_through_both_isps():
    net = build_netplan(n_sites(3, "pi-bgp"))
    pis = [str(p) for p in net.plan.pi_prefixes.values()]
    assert len(set(pis)) == 3
    for isp in ("ispa", "ispb"):
        assert _nbr(net, "core", isp).accept == [str(net.plan.aggregates[isp]), *pis]
    pa = build_netplan(n_sites(3, "sadr-static"))
    assert not pa.plan.pi_prefixes
    assert _nbr(pa, "core", "ispa").accept == [str(pa.plan.aggregates["ispa"])]


def test_isps_accept_the_pi_prefix_from_their_customer(net):
    for isp, router in (("ispa", "ra"), ("ispb", "rb")):
        assert PI in net.nodes[isp].ingress[router]


def test_scenarios_select_the_pi_address(tmp_path, net):
    loaded = load_scenario(SCEN / "baseline-pi-silent.yaml")
    plans = plan_flows(loaded.scenario, net.plan.addresses, tmp_path)
    assert {p.src for p in plans} == {"2001:db8:ff00:1::10"}
    resolve(loaded, PlannedLab(net))  # `{isp: pi}` is a known address space in a PI lab
    pa = build_netplan(load_topology(TOPO / "two-isp-site.yaml"))
    with pytest.raises(Exception, match="no ISP named 'pi'"):
        resolve(loaded, PlannedLab(pa))
