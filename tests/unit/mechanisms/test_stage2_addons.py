"""The stage-2 add-ons as plain data: what exit-path and deprecation add to the NetPlan, and bad options
named with file:line."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from testbed.errors import TopologyError
from testbed.generate import n_sites
from testbed.kinds import kind_of
from testbed.kinds.multihoming import mechanism_conditions
from testbed.netplan import build_netplan
from testbed.render import render
from testbed.topology import load_topology

ROOT = Path(__file__).resolve().parents[3]
STAGE2 = ROOT / "topologies" / "stage2-site.yaml"


def _with(tmp_path, addons: str) -> Path:
    path = tmp_path / "s2.yaml"
    text = STAGE2.read_text()
    start = text.index("    addons:\n")
    end = text.index("    exits:\n")
    path.write_text(text[:start] + addons + text[end:])
    return path


def test_exit_path_runs_in_every_host_with_its_addresses_and_timing():
    net = build_netplan(load_topology(STAGE2))
    for host in ("h1", "h2"):
        [svc] = [s for s in net.nodes[host].services if s.name == "exitpath"]
        assert svc.ready == "{node_dir}/exitpath.sock"
        srcs = [svc.argv[i + 1] for i, a in enumerate(svc.argv) if a == "--source"]
        assert srcs == [net.plan.address(host, "ispa"), net.plan.address(host, "ispb")]
        assert svc.argv[-6:] == ["--lifetime", "60", "--lock", "1", "--probe-timeout", "1.5"]
    assert not any(s.name == "exitpath" for s in net.nodes["srv"].services)


def test_deprecation_agents_radvd_and_hosts(tmp_path):
    net = build_netplan(load_topology(STAGE2))
    ra, rb = net.nodes["ra"], net.nodes["rb"]
    assert [s.name for s in ra.services] == ["radvd", "deprecation"]  # ra is the LAN's gateway
    assert [s.name for s in rb.services] == ["deprecation"]
    assert ra.services[0].check[:2] == ["radvd", "--configtest"]
    argv_a, argv_b = ra.services[1].argv, rb.services[0].argv
    assert "--watch" in argv_a and argv_a[argv_a.index("--watch") + 1] == "ispa=ispa"
    assert argv_a[argv_a.index("--remote") + 1] == "ispb"
    assert argv_b[argv_b.index("--probe") + 1].endswith("," + net.plan.address("srv"))
    assert argv_b[argv_b.index("--announce") + 1] in [a.split("/")[0] for i in ra.ifaces for a in i.addresses]
    h1 = net.nodes["h1"]
    assert h1.sysctls["net.ipv6.conf.default.accept_ra"] == "1" and h1.sysctls["net.ipv6.conf.default.autoconf"] == "1"
    assert h1.sysctls["net.ipv6.conf.default.accept_ra_defrtr"] == "0"
    assert "token set ::10 dev lan" in h1.ip_commands
    out = tmp_path / "r"
    render(net, out)
    conf = (out / "nodes" / "ra" / "radvd.conf").read_text()
    assert "prefix 2001:db8:a001:1::/64" in conf and "prefix 2001:db8:b001:1::/64" in conf
    assert "AdvPreferredLifetime 1800;" in conf


@pytest.mark.parametrize("addons,field,words", [
    ("    addons: [{mechanism: deprecation, options: {down_aftr: 3}}]\n", "addons.0.options.down_aftr",
     "unknown option"),
    ("    addons: [{mechanism: deprecation, options: {probe_target: nosuch}}]\n", "addons.0.options.probe_target",
     "neither an IPv6 address nor a host"),
    ("    addons: [{mechanism: deprecation, options: {probe_timeout_ms: 5000}}]\n",
     "addons.0.options.probe_timeout_ms", "longer than down_after probe intervals"),
    ("    addons: [{mechanism: exit-path, options: {lock_ms: 90000}}]\n", "addons.0.options",
     "lock_ms (90000) must be shorter than lifetime_ms"),
    ("    addons: [{mechanism: exit-path, options: {lifetime_ms: -1}}]\n", "addons.0.options.lifetime_ms",
     "greater than 0"),
])
def test_bad_options_name_file_line_and_field(tmp_path, addons, field, words):
    path = _with(tmp_path, addons)
    with pytest.raises(TopologyError) as err:
        load_topology(path)
    line = next(i for i, l in enumerate(path.read_text().splitlines(), 1) if "addons:" in l)
    text = str(err.value)
    assert f"{path}:{line}: sites.0.{field}" in text and words in text, text


class _Lab:
    """A running lab as the condition sees it: each host's `ip -j -6 addr show`, from a table."""

    def __init__(self, deprecated: dict[str, set[str]]) -> None:
        self.deprecated = deprecated

    def node(self, host: str):
        addrs = [{"local": a, "deprecated": True} for a in sorted(self.deprecated.get(host, ()))]
        out = json.dumps([{"ifname": "lan", "addr_info": addrs + [{"local": "fe80::1"}]}])
        return SimpleNamespace(run=lambda argv: SimpleNamespace(stdout=out))


def test_deprecation_declares_its_own_readiness_condition():
    """The add-on, not the lab kind, says what it must have done before deploy returns: no advertised
    address of a learning host is deprecated (a first verdict before it saw an ISP up)."""
    net = build_netplan(load_topology(STAGE2))
    conditions = {r.name: r for r in kind_of(net.topology).readiness(net)}
    assert list(conditions) == ["BGP convergence", "data plane", "sources preferred"]
    cond = conditions["sources preferred"]
    a1, b1 = net.plan.address("h1", "ispa"), net.plan.address("h1", "ispb")
    assert f"h1's ispa address {a1} preferred" in cond.targets(net)
    assert f"h2's ispb address {net.plan.address('h2', 'ispb')} preferred" in cond.targets(net)
    assert cond.pending(_Lab({})) == []
    assert cond.pending(_Lab({"h1": {b1}})) == [f"h1's ispb address {b1} is deprecated"]
    without = build_netplan(load_topology(ROOT / "topologies" / "two-isp-site.yaml"))
    assert "sources preferred" not in [r.name for r in kind_of(without.topology).readiness(without)]


def test_same_named_conditions_of_several_sites_are_polled_as_one(tmp_path):
    data = n_sites(2).model_dump(exclude_none=True, mode="json")
    data.pop("source", None)
    for site in data["sites"]:
        site["addons"] = ["deprecation"]
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    two = build_netplan(load_topology(path))
    assert [c.name for c in two.conditions] == ["sources preferred"] * 2  # one per site, in the NetPlan
    [cond] = mechanism_conditions(two)
    hosts = {t.split("'")[0] for t in cond.targets(two)}
    assert hosts == {"s1h1", "s2h1"}
    addr = two.plan.address("s2h1", "ispb")
    assert cond.pending(_Lab({"s2h1": {addr}})) == [f"s2h1's ispb address {addr} is deprecated"]
