"""The campus lab and what the stage-1 mechanisms build on it, without root: the site IGP, the ISPs'
reject option, tunnel-mesh's configuration and agent logic, sadr-static's counts, and bad input."""

import subprocess
import sys
from pathlib import Path

import pytest

from agents.tunnelmesh.sync import Pair, plan as sync_plan
from testbed.errors import TopologyError
from testbed.netplan import build_netplan
from testbed.render import render_node
from testbed.topology import load_topology

ROOT = Path(__file__).resolve().parents[2]
CAMPUS = ROOT / "topologies" / "campus.yaml"
ONE_ISP = """\
name: t
isps:
  - {name: core, asn: 65000, hosts: [srv]}
  - {name: ispa, asn: 65010, upstreams: [core]}
sites:
  - name: site
    mechanism: MECH
    igp: ospf6
    exits:
      - {router: ra, isp: ispa}
    lans:
      - {name: lan, hosts: [h1]}
"""


def netplan(mech: str = "tunnel-mesh"):
    return build_netplan(load_topology(CAMPUS).with_mechanism(mech))


def files(net, node: str) -> dict[str, str]:
    return {f.relpath: f.text for f in render_node(net, net.nodes[node], Path("/run/x"))}


def test_site_igp_runs_on_every_site_router_with_lans_passive_and_no_bgpd_inside():
    net = netplan("sadr-static")
    for r in ("ra", "rb", "c1", "c2"):
        assert "ospf6d" in net.nodes[r].frr_daemons
    assert "bgpd" not in net.nodes["c1"].frr_daemons and net.nodes["c1"].bgp is None
    conf = files(net, "c1")["ospf6d.conf"]
    assert "interface lan1\n ipv6 ospf6 area 0.0.0.0\n ipv6 ospf6 passive" in conf
    assert "interface ra\n ipv6 ospf6 area 0.0.0.0\n ipv6 ospf6 network point-to-point" in conf
    # sadr-static: the source-specific defaults are the only defaults, none goes into the IGP
    assert "default-information" not in files(net, "ra")["ospf6d.conf"]
    assert "2001:db8:a001:2::/64" in net.await_kernel_routes["c1"]  # lan2's prefix, learnt by the IGP


def test_the_site_igp_is_opt_in():
    topo = load_topology(ROOT / "topologies" / "two-isp-site.yaml")
    assert topo.site_igp(topo.sites[0]) == "none"
    assert "ospf6d" not in build_netplan(topo).nodes["ra"].frr_daemons
    assert load_topology(CAMPUS).site_igp(load_topology(CAMPUS).sites[0]) == "ospf6"


def test_none_and_tunnel_mesh_announce_a_default_in_the_igp():
    for mech in ("none", "tunnel-mesh"):
        assert " default-information originate" in files(netplan(mech), "rb")["ospf6d.conf"], mech


def test_isp_ingress_reject_uses_icmpv6_policy_fail_and_keeps_the_counter():
    nft = files(netplan(), "ispa")["ruleset.nft"]
    assert "counter name ingress_ra reject with icmpv6 policy-fail" in nft
    default = build_netplan(load_topology(ROOT / "topologies" / "two-isp-site.yaml"))
    assert "counter name ingress_ra drop" in files(default, "ispa")["ruleset.nft"]


def test_tunnel_mesh_configures_anycast_agent_egress_reject_and_link_mtu():
    net = netplan()
    ra = files(net, "ra")
    assert "permit 2001:db8:a001:ffff:ffff:ffff:ffff:ffff/128" in ra["ospf6d.conf"]
    assert "redistribute kernel route-map igp-kernel" in ra["ospf6d.conf"]
    assert 'oifname "ispa" ip6 saddr != { 2001:db8:a001::/48, 2001:db8:a000::/64 } counter name noexit_ispa ' \
           "reject with icmpv6 policy-fail" in ra["ruleset.nft"]
    assert "link set dev rb mtu 1600" in ra["setup.ip"] and "link set dev ra mtu 1600" in files(net, "rb")["setup.ip"]
    assert "mtu" not in files(net, "h1")["setup.ip"]  # LANs keep 1500
    assert "--foreign 2001:db8:b001::/48=2001:db8:b001:ffff:ffff:ffff:ffff:ffff" in ra["services.txt"]
    assert "::/0 from 2001:db8:b001::/48" in net.await_kernel_routes["ra"]


def test_sadr_static_puts_routes_on_interior_routers_and_counts_m_r_e():
    net = netplan("sadr-static")
    c2 = [(r.src, r.via) for r in net.nodes["c2"].routes if r.src]
    assert len(c2) == 2 and all(via.endswith("f002::1") for _, via in c2)  # both via rb, c2's exit
    assert any("2 prefixes x 4 routers x 1 external destination = 8" in n and "8 configured" in n for n in net.notes)


def test_campus_3isp_counts_15_static_routes():
    net = build_netplan(load_topology(ROOT / "topologies" / "campus-3isp.yaml").with_mechanism("sadr-static"))
    assert any("3 prefixes x 5 routers x 1 external destination = 15" in n for n in net.notes)


# --- the agent's synchronisation step (pure) ---
OWN = [Pair.parse("2001:db8:a001::/48=2001:db8:a001:ffff:ffff:ffff:ffff:ffff")]
FOREIGN = [Pair.parse("2001:db8:b001::/48=2001:db8:b001:ffff:ffff:ffff:ffff:ffff")]
BGP_DEFAULT = {"dst": "default", "gateway": "fe80::1", "dev": "ispa", "protocol": "bgp"}
ANY_B = {"dst": "2001:db8:b001:ffff:ffff:ffff:ffff:ffff", "gateway": "fe80::2", "dev": "rb", "protocol": "ospf"}


def test_agent_adds_decap_and_encap_when_isp_default_and_remote_anycast_exist():
    cmds = [" ".join(c) for c in sync_plan([BGP_DEFAULT, ANY_B], OWN, FOREIGN, "rb")]
    assert cmds == ["ip -6 route replace 2001:db8:a001:ffff:ffff:ffff:ffff:ffff/128 dev rb metric 1 encap seg6local "
                    "action End.DT6 table 254",
                    "ip -6 route replace ::/0 from 2001:db8:b001::/48 encap seg6 mode encap.red segs "
                    "2001:db8:b001:ffff:ffff:ffff:ffff:ffff dev rb"]


def test_agent_withdraws_both_when_their_conditions_go_and_is_idle_when_in_step():
    decap = {"dst": "2001:db8:a001:ffff:ffff:ffff:ffff:ffff", "encap": "seg6local", "dev": "rb", "metric": 1}
    encap = {"dst": "default", "from": "2001:db8:b001::/48", "encap": "seg6", "dev": "rb"}
    assert sync_plan([BGP_DEFAULT, ANY_B, decap, encap], OWN, FOREIGN, "rb") == []
    cmds = [" ".join(c) for c in sync_plan([decap, encap], OWN, FOREIGN, "rb")]
    assert cmds == ["ip -6 route del 2001:db8:a001:ffff:ffff:ffff:ffff:ffff/128 dev rb metric 1",
                    "ip -6 route del ::/0 from 2001:db8:b001::/48"]


@pytest.mark.parametrize("mech, options, words", [
    ("tunnel-mesh", "", ["sites.0.exits", "only one ISP"]),
    ("sadr-static", "", ["sites.0.exits", "only one ISP"]),
])
def test_one_isp_site_is_refused_at_validate_time_with_file_and_line(tmp_path, mech, options, words):
    path = tmp_path / "one.yaml"
    path.write_text(ONE_ISP.replace("MECH", mech))
    res = subprocess.run([sys.executable, "-m", "testbed.cli", "validate", str(path)], capture_output=True, text=True)
    assert res.returncode == 2, res.stdout
    assert f"{path}:9:" in res.stderr and all(w in res.stderr for w in words), res.stderr


def test_an_option_of_the_wrong_type_is_refused_with_file_and_line(tmp_path):
    text = CAMPUS.read_text().replace("    mechanism: tunnel-mesh\n", "    mechanism: tunnel-mesh\n"
                                      "    options: {link_mtu: big}\n")
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(TopologyError) as exc:
        load_topology(path)
    assert "sites.0.options.link_mtu" in str(exc.value) and f"{path}:" in str(exc.value)


def test_tunnel_mesh_without_the_site_igp_is_refused(tmp_path):
    text = CAMPUS.read_text().replace("    igp: ospf6\n", "    igp: none\n")
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(TopologyError) as exc:
        load_topology(path)
    assert "sites.0.igp" in str(exc.value) and "set igp: ospf6" in str(exc.value)
