"""pi-bgp's traffic-engineering options: prepending, communities and local preference per ISP become
route-maps on the exit routers; wrong ones are refused with their line."""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed.errors import TopologyError
from testbed.netplan import build_netplan
from testbed.render import render_node
from testbed.topology import load_topology

PI = Path(__file__).resolve().parents[3] / "topologies" / "two-isp-site-pi.yaml"


def _lab(tmp_path: Path, options: str) -> Path:
    path = tmp_path / "pi.yaml"
    path.write_text(PI.read_text().replace("    mechanism: pi-bgp\n", f"    mechanism: pi-bgp\n    options: {options}\n"))
    return path


def _bgpd(net, router: str) -> str:
    return next(f.text for f in render_node(net, net.nodes[router], Path("/run")) if f.relpath == "bgpd.conf")


def test_te_options_become_route_maps(tmp_path):
    net = build_netplan(load_topology(_lab(tmp_path, "{prepend: {ispa: 2}, communities: {ispb: [no-export]}, "
                                                     "local_pref: {ispb: 200}}")))
    ra, rb = _bgpd(net, "ra"), _bgpd(net, "rb")
    assert "route-map te-out-ispa permit 10\n set as-path prepend 65100 65100\n" in ra
    assert "route-map te-out-ispa out" in ra
    assert " set community no-export additive" in rb and " set local-preference 200" in rb
    assert "route-map te-in-ispb in" in rb


def test_no_options_no_route_maps(tmp_path):
    net = build_netplan(load_topology(PI))
    assert "route-map" not in _bgpd(net, "ra")


@pytest.mark.parametrize("options,words", [
    ("{prepend: {ispz: 1}}", "sites.0.options.prepend.ispz: ispz is not an ISP of site site"),
    ("{prepend: {ispa: 11}}", "sites.0.options.prepend.ispa: prepend 11 is outside 0..10"),
    ("{local_pref: {ispa: -1}}", "sites.0.options.local_pref.ispa: local preference -1 is outside"),
    ("{communities: {ispb: ['65020']}}", "sites.0.options.communities.ispb.0: '65020' is not a community"),
])
def test_wrong_te_options_name_their_line(tmp_path, options, words):
    path = _lab(tmp_path, options)
    with pytest.raises(TopologyError) as err:
        load_topology(path)
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "options:" in text)
    assert f"{path}:{line}: {words}" in str(err.value)
