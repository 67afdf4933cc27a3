"""One FRR dry run per config shape: routers of one role share a shape, and anything not provably valid
keeps a config out of its neighbours' shape (so it gets a dry run of its own)."""

from pathlib import Path

from testbed.frr import config_shape
from testbed.generate import n_sites
from testbed.netplan import build_netplan
from testbed.render import node_dir, render


def _shapes(tmp_path: Path, n: int) -> dict[tuple[str, str], list[str]]:
    net = build_netplan(n_sites(n))
    render(net, tmp_path)
    shapes: dict[tuple[str, str], list[str]] = {}
    for spec in net.routers():
        d = node_dir(tmp_path, spec.name)
        for daemon in spec.frr_daemons:
            key = (daemon, config_shape((d / f"{daemon}.conf").read_text(), spec.name, str(d)))
            shapes.setdefault(key, []).append(spec.name)
    return shapes


def test_site_routers_of_one_role_share_a_shape_and_the_isps_do_not(tmp_path):
    shapes = _shapes(tmp_path, 20)
    assert sum(len(v) for v in shapes.values()) == 2 * (2 * 20 + 3)
    bgpd = sorted(sorted(v) for (daemon, _), v in shapes.items() if daemon == "bgpd")
    assert ["core"] in bgpd and ["ispa"] in bgpd and ["ispb"] in bgpd
    assert sorted(f"s{i}a" for i in range(1, 21)) in bgpd and sorted(f"s{i}b" for i in range(1, 21)) in bgpd
    assert len(shapes) == 6  # one zebra shape, five bgpd shapes


CONF = """! bgpd for s1a - rendered
hostname s1a
log file /run/x/nodes/s1a/bgpd.log informational
router bgp 65101
 bgp router-id 10.255.0.4
 neighbor 2001:db8:a000::1 remote-as 65010
 neighbor 2001:db8:a000::1 description ispa is our upstream
 address-family ipv6 unicast
  network 2001:db8:a001::/48
"""


def _shape(text: str) -> str:
    return config_shape(text, "s1a", "/run/x/nodes/s1a")


def test_names_asns_descriptions_and_valid_addresses_are_not_part_of_the_shape():
    other = (CONF.replace("s1a", "s7a").replace("65101", "4200000007").replace("a001::", "a007::")
             .replace("10.255.0.4", "10.255.0.16").replace("our upstream", "the upstream"))
    assert config_shape(other, "s7a", "/run/x/nodes/s7a") == _shape(CONF)


def test_what_could_be_invalid_stays_in_the_shape():
    base = _shape(CONF)
    assert _shape(CONF.replace("2001:db8:a001::/48", "2001:db8:a001::/129")) != base  # bad length
    assert _shape(CONF.replace("2001:db8:a001::/48", "2001:db8:a001::/64")) != base  # other length
    assert _shape(CONF.replace("2001:db8:a000::1 remote-as", "2001:db8:a000:::1 remote-as", 1)) != base
    assert _shape(CONF.replace("remote-as 65010", "remote-as 4294967296")) != base  # past 32 bits
    assert _shape(CONF.replace("router bgp 65101", "router bgp 0")) != base
    assert _shape(CONF.replace(" network", " networks")) != base  # a typo in a keyword
