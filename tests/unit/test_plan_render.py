"""The pure core on the default lab: address plan, netplan, and rendered configs (no root)."""

import ipaddress
import os
import shutil
from pathlib import Path

import pytest

from testbed.addressing import build_plan
from testbed.netplan import build_netplan
from testbed.render import render
from testbed.topology import load_topology

DEFAULT = Path(__file__).resolve().parents[2] / "topologies" / "two-isp-site.yaml"


@pytest.fixture
def topo():
    return load_topology(DEFAULT)


def test_plan_is_deterministic_and_pa(topo):
    a, b = build_plan(topo), build_plan(load_topology(DEFAULT))
    assert a.as_dict() == b.as_dict()
    for isp, prefix in a.site_prefixes["site"].items():
        assert prefix.prefixlen == 48 and prefix.subnet_of(a.aggregates[isp])
    h1 = a.addresses("h1")
    assert set(h1) == {"ispa", "ispb"}  # one address per ISP prefix
    assert ipaddress.IPv6Address(h1["ispa"][0]) in a.site_prefixes["site"]["ispa"]
    assert ipaddress.IPv6Address(h1["ispb"][0]) in a.site_prefixes["site"]["ispb"]
    every = [str(x) for s in a.segments for m in s.members for x in m.addresses]
    assert len(every) == len(set(every)), "an address is used twice"


def test_overrides(tmp_path, topo):
    text = DEFAULT.read_text().replace("{router: ra, isp: ispa}", "{router: ra, isp: ispa, prefix: '2001:db8:a0ff::/48'}")
    text = text.replace("{name: h2, services: [http]}", "{name: h2, iid: '::beef', services: [http]}")
    path = tmp_path / "t.yaml"
    path.write_text(text)
    plan = build_plan(load_topology(path))
    assert plan.address("h2", "ispa") == "2001:db8:a0ff:1::beef"
    assert plan.address("h2", "ispb").endswith("::beef")


def test_isps_announce_only_aggregates_upstream(topo):
    net = build_netplan(topo)
    for isp in ("ispa", "ispb"):
        to_core = next(n for n in net.nodes[isp].bgp.neighbors if n.peer == "core")
        assert to_core.export == [str(net.plan.aggregates[isp])]
    to_ra = next(n for n in net.nodes["ispa"].bgp.neighbors if n.peer == "ra")
    assert to_ra.accept == [str(net.plan.site_prefixes["site"]["ispa"])] and to_ra.default_originate


def test_sadr_static_routes_m_r_e(topo):
    net = build_netplan(topo)
    sadr = {r: [x for x in net.nodes[r].routes if x.src] for r in ("ra", "rb")}
    # 2 prefixes x 2 exit routers: every router has one source-specific default per site prefix
    assert {r: len(v) for r, v in sadr.items()} == {"ra": 2, "rb": 2}
    ra_b = next(x for x in sadr["ra"] if x.src == str(net.plan.site_prefixes["site"]["ispb"]))
    assert ra_b.dev == "rb"  # ISP-B-sourced traffic goes to rb over the internal link
    none = build_netplan(topo.with_mechanism("none"))
    assert not [x for x in none.nodes["ra"].routes if x.src]


def test_render_writes_every_config(tmp_path, topo):
    net = build_netplan(topo)
    render(net, tmp_path)
    bgpd = (tmp_path / "nodes/ispa/bgpd.conf").read_text()
    assert "ipv6 prefix-list to-core seq 5 permit 2001:db8:a000::/40" in bgpd
    assert "neighbor 2001:db8:a000::2 default-originate" in bgpd
    nft = (tmp_path / "nodes/ispa/ruleset.nft").read_text()
    assert 'iifname "ra" ip6 saddr != { 2001:db8:a001::/48, 2001:db8:a000::/64 } counter name ingress_ra drop' in nft
    ip = (tmp_path / "nodes/ra/setup.ip").read_text()
    assert "route add ::/0 from 2001:db8:b001::/48 via 2001:db8:a001:f000::2 dev rb" in ip
    assert (tmp_path / "plan.json").exists()


@pytest.mark.skipif(not Path("/usr/lib/frr/bgpd").exists() or not shutil.which("nft"), reason="FRR/nft missing")
@pytest.mark.parametrize("path", [DEFAULT, DEFAULT.with_name("two-isp-site-pi-bfd.yaml")], ids=["pa", "pi-bfd"])
def test_rendered_configs_pass_the_daemons_own_checks(frr_readable, frr_dry_run, path):
    net = build_netplan(load_topology(path))
    render(net, frr_readable)
    for router in net.routers():
        for daemon in router.frr_daemons:
            conf = frr_readable / "nodes" / router.name / f"{daemon}.conf"
            assert not frr_dry_run(conf), f"{conf}: {conf.read_text()}"


@pytest.mark.skipif(not Path("/usr/lib/frr/bgpd").exists() or os.geteuid() != 0, reason="FRR missing, or not root")
def test_the_daemons_own_check_can_fail(frr_readable, frr_dry_run):
    """The check above is not a formality: a rendered config with a line bgpd does not know is refused."""
    net = build_netplan(load_topology(DEFAULT))
    render(net, frr_readable)
    conf = frr_readable / "nodes" / "ra" / "bgpd.conf"
    conf.write_text(conf.read_text().replace("router bgp", "neighbor nowhere frobnicate\nrouter bgp", 1))
    assert frr_dry_run(conf)


def test_mptcp_mechanism_renders_endpoints_per_host_address(tmp_path):
    topo = load_topology(DEFAULT.parent / "two-sites-mptcp.yaml")
    net = build_netplan(topo)
    render(net, tmp_path)
    text = (tmp_path / "nodes/hA/setup.ip").read_text()
    for i, addr in enumerate(net.plan.addresses("hA")[isp][0] for isp in ("ispa1", "ispa2")):
        assert f"mptcp endpoint add {addr} dev lan id {i + 1} subflow signal" in text
    assert "mptcp limits set" in text


def test_shim_hosts_get_hba_addresses_the_agent_regenerates(topo):
    from agents.shim.config import build_identity
    shim = load_topology(DEFAULT.parent / "two-sites-shim.yaml")
    net = build_netplan(shim)
    agent = next(s for s in net.nodes["hA"].services if s.name == "shim")
    argv = agent.argv
    prefixes = [argv[i + 1] for i, a in enumerate(argv) if a == "--prefix"]
    ident = build_identity(prefixes, int(argv[argv.index("--sec") + 1]), argv[argv.index("--modifier") + 1],
                           argv[argv.index("--pseudo-key") + 1], None)
    planned = sorted(a for v in net.plan.addresses("hA").values() for a in v)
    assert sorted(str(a) for a in ident.hba_set.addresses) == planned


def test_shim_site_runs_mptcp_hosts_without_an_agent():
    mixed = load_topology(DEFAULT.parent / "two-sites-shim-mptcp.yaml")
    net = build_netplan(mixed)
    assert [s.name for s in net.nodes["hA"].services] == ["shim"]
    assert not [s for s in net.nodes["mA"].services if s.name == "shim"]
    assert net.nodes["mA"].sysctls["net.mptcp.enabled"] == "1"
    endpoints = [c for c in net.nodes["mA"].ip_commands if c.startswith("mptcp endpoint add")]
    assert len(endpoints) == 2 and not [c for c in net.nodes["hA"].ip_commands if "mptcp" in c]


def test_mptcp_hosts_must_be_hosts_of_the_site(tmp_path):
    from testbed.errors import TopologyError
    path = tmp_path / "t.yaml"
    path.write_text((DEFAULT.parent / "two-sites-shim-mptcp.yaml").read_text().replace("mptcp_hosts: [mA]",
                                                                                      "mptcp_hosts: [mB]"))
    with pytest.raises(TopologyError, match=f"{path}:18: sites.0.options.mptcp_hosts.0: mptcp_hosts names mB, "
                                            "not a host of this site; its hosts: hA, mA"):
        load_topology(path)
    mixed = load_topology(DEFAULT.parent / "two-sites-shim-mptcp.yaml")
    site = mixed.sites[0].model_copy(update={"options": {**mixed.sites[0].options, "mptcp_hosts": ["mB"]}})
    with pytest.raises(TopologyError, match="sites.0.options.mptcp_hosts.0: mptcp_hosts names mB"):
        mixed.variant(sites=[site, mixed.sites[1]])


def test_routers_neither_accept_nor_send_ipv6_redirects(tmp_path):
    """No IPv6 send_redirects sysctl exists, so every router drops its own outgoing Redirects in nftables;
    hosts keep no such table (their rulesets stay the mechanisms')."""
    net = build_netplan(load_topology(DEFAULT))
    render(net, tmp_path)
    for router in ("ra", "rb", "ispa", "core"):
        assert net.nodes[router].sysctls["net.ipv6.conf.all.accept_redirects"] == "0"
        text = (tmp_path / "nodes" / router / "ruleset.nft").read_text()
        assert "icmpv6 type nd-redirect counter name redirects_suppressed drop" in text
    assert not any("mhlab_no_redirects" in t for t in net.nodes["h1"].nft)
