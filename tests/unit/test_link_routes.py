"""A link that comes back up gets its kernel routes back: the lines of the node's rendered setup.ip that go
out through that interface, re-added with `replace` (an interface set down loses every IPv6 route through it)."""

from testbed.faults import routes_through
from testbed.netplan import build_netplan
from testbed.render import render
from testbed.topology import load_topology

SETUP = """link set dev ispa up
# anchor for announcing 2001:db8:a001::/48 to ispa
route add blackhole 2001:db8:a001::/48
route add ::/0 from 2001:db8:a001::/48 via 2001:db8:a000::1 dev ispa
route add ::/0 from 2001:db8:b001::/48 via 2001:db8:a001:f000::2 dev rb
route add 2001:db8:1::/64 via 2001:db8:a000::9 dev ispa2 metric 10
"""


def test_only_the_routes_through_that_interface():
    assert routes_through(SETUP, "ispa") == ["route replace ::/0 from 2001:db8:a001::/48 via 2001:db8:a000::1 dev ispa"]
    assert routes_through(SETUP, "ispa2") == ["route replace 2001:db8:1::/64 via 2001:db8:a000::9 dev ispa2 metric 10"]
    assert routes_through(SETUP, "lan") == []


def test_the_default_lab_exit_gets_its_source_route_back(tmp_path):
    net = build_netplan(load_topology("topologies/two-isp-site.yaml"))
    render(net, tmp_path)
    lines = routes_through((tmp_path / "nodes/ra/setup.ip").read_text(), "ispa")
    assert lines and all(l.startswith("route replace ::/0 from ") and " dev ispa" in l for l in lines)
    assert routes_through((tmp_path / "nodes/h1/setup.ip").read_text(), "lan")[0].startswith("route replace ::/0 via")
