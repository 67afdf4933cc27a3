"""sadr-bgp and sadr-igp without root: bad sites refused at parse time with file:line, the rendered BIRD
configs accepted by BIRD's own parser, the per-prefix rules ending in unreachable, babeld's source routes."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from testbed.errors import TopologyError
from testbed.netplan import build_netplan
from testbed.render import render
from testbed.topology import load_topology

ROOT = Path(__file__).resolve().parents[3]
MINI = re.sub(r"mechanism: \S+", "mechanism: sadr-bgp", (ROOT / "topologies" / "campus-mini.yaml").read_text())


def _load(tmp_path, text):
    path = tmp_path / "lab.yaml"
    path.write_text(text)
    return load_topology(path), path


def _error(tmp_path, text) -> str:
    with pytest.raises(TopologyError) as exc:
        _load(tmp_path, text)
    return str(exc.value)


@pytest.mark.parametrize("mech", ["sadr-bgp", "sadr-igp"])
def test_one_isp_is_refused(tmp_path, mech):
    text = MINI.replace("mechanism: sadr-bgp", f"mechanism: {mech}").replace("{router: rb, isp: ispb}",
                                                                          "{router: rb, isp: ispa}")
    msg = _error(tmp_path, text)
    line = text.splitlines().index("    exits:") + 1
    assert f"lab.yaml:{line}:" in msg and "two or more ISPs" in msg and "it has 1 (ispa)" in msg


def test_exits_joined_only_by_an_interior_router_outside_the_ibgp_domain(tmp_path):
    text = MINI.replace("links: [[ra, rc], [rb, rc], [ra, rb]]", "links: [[ra, rc], [rb, rc]]").replace(
        "    mechanism: sadr-bgp\n", "    mechanism: sadr-bgp\n    options: {ibgp_routers: []}\n")
    msg = _error(tmp_path, text)
    line = text.splitlines().index("    options: {ibgp_routers: []}") + 1
    assert f"lab.yaml:{line}:" in msg and "ibgp_routers" in msg and "ra | rb" in msg and "rc" in msg


def test_unknown_interior_router_and_wrong_option_type(tmp_path):
    text = MINI.replace("    mechanism: sadr-bgp\n", "    mechanism: sadr-bgp\n    options: {ibgp_routers: [rz]}\n")
    assert "'rz' is not a router of site camp" in _error(tmp_path, text)
    text = MINI.replace("    mechanism: sadr-bgp\n", "    mechanism: sadr-bgp\n    options: {table_base: many}\n")
    msg = _error(tmp_path, text)
    assert "options.table_base" in msg and "integer" in msg
    text = MINI.replace("    mechanism: sadr-bgp\n", "    mechanism: sadr-bgp\n    options: {isp_routes: some}\n")
    assert "'default' or 'full'" in _error(tmp_path, text)
    text = MINI.replace("mechanism: sadr-bgp", "mechanism: sadr-igp\n    options: {hello_interval_ms: 1.5s}")
    assert "options.hello_interval_ms" in _error(tmp_path, text)


def test_validate_cli_exits_2_with_file_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(MINI.replace("{router: rb, isp: ispb}", "{router: rb, isp: ispa}"))
    res = subprocess.run([str(ROOT / ".venv/bin/mhlab"), "validate", str(path)], capture_output=True, text=True)
    assert res.returncode == 2 and f"{path}:" in res.stderr + res.stdout


def _render(tmp_path, text):
    topo, _ = _load(tmp_path, text)
    net = build_netplan(topo)
    render(net, tmp_path / "out")
    return net, tmp_path / "out" / "nodes"


@pytest.mark.parametrize("routes", ["default", "full"])
def test_bird_configs_parse_and_rules_end_unreachable(tmp_path, routes):
    text = MINI.replace("    mechanism: sadr-bgp\n", f"    mechanism: sadr-bgp\n    options: {{isp_routes: {routes}}}\n")
    net, nodes = _render(tmp_path, text)
    for r in ("ra", "rb", "rc"):
        node = net.nodes[r]
        assert node.bgp is None and "bgpd" not in node.frr_daemons  # BIRD speaks BGP here
        conf = (nodes / r / "bird.conf").read_text()
        assert "(65100, 2) ~ bgp_community" in conf and "add paths on" in conf
        rules = [c for c in node.ip_commands if c.startswith("rule")]
        assert rules[-1].startswith("rule add from 2001:db8:b001::/48 unreachable")
        assert [r_.split(" pref ")[0].split()[-1] for r_ in rules[:3]] == ["0", "101", "unreachable"]
        if shutil.which("bird"):
            res = subprocess.run(["bird", "-p", "-c", str(nodes / r / "bird.conf")], capture_output=True, text=True)
            assert res.returncode == 0, res.stderr
    assert ("if net != ::/0 then reject;" in (nodes / "ra" / "bird.conf").read_text()) == (routes == "default")
    ispa = next(n for n in net.nodes["ispa"].bgp.neighbors if n.peer == "ra")
    assert ispa.default_originate == (routes == "default")
    assert (nodes / "ra" / "services.txt").read_text().startswith("bird: /usr/sbin/bird -f -c")


def test_babeld_source_specific_defaults(tmp_path):
    net, nodes = _render(tmp_path, MINI.replace("mechanism: sadr-bgp", "mechanism: sadr-igp"))
    ra = (nodes / "ra" / "babeld.conf").read_text()
    assert "ipv6-subtrees true" in ra
    assert "redistribute ip ::/0 eq 0 proto 186 src-prefix 2001:db8:a001::/48 allow" in ra
    assert "src-prefix 2001:db8:b001::/48" not in ra
    assert "interface rc" in ra and "interface rb" in ra and "interface ispa" not in ra
    assert "bgpd" in net.nodes["ra"].frr_daemons and "bgpd" not in net.nodes["rc"].frr_daemons
    # no fall-through to ISP A's plain default for packets from ISP B's prefix
    assert net.nodes["ra"].ip_commands == ["route add unreachable ::/0 from 2001:db8:b001::/48 metric 4294967295"]
    assert len(net.nodes["rc"].ip_commands) == 2
