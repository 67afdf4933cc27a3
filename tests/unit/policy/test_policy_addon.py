"""The policy add-on, pure: options refused with file:line, the table it distributes, the files a host
writes from it, and the DHCPv6 formats (RFC 7078 options 84/85, the vendor option with port rows)."""

from __future__ import annotations

import ipaddress
import json
import shlex
from pathlib import Path

import pytest

from agents.policy import wire
from agents.policy.apply import addrlabel_batch, gai_conf, nft_ruleset
from agents.policy.table import Policy, dnsmasq_options
from testbed.errors import TopologyError
from testbed.mechanisms.policy import PolicyOptions, Split, policy_table, split_slices
from testbed.netplan import build_netplan
from testbed.topology import load_topology

DEFAULT = Path(__file__).resolve().parents[3] / "topologies" / "two-isp-site.yaml"
PA = {"ispa": "2001:db8:a001::/48", "ispb": "2001:db8:b001::/48"}


def _lab(tmp_path: Path, options: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(DEFAULT.read_text().replace(
        "    mechanism: sadr-static\n",
        "    mechanism: sadr-static\n    addons:\n      - mechanism: policy\n        options:\n" + options))
    return path


def _line(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


@pytest.mark.parametrize("options,needle,words", [
    ("          rules:\n            - {src: '2001:db8:c001::/48', dst: '::/0'}\n", "src:",
     "sites.0.addons.0.options.rules.0.src: 2001:db8:c001::/48 is not inside the site's prefixes"),
    ("          rules:\n            - {isp: ispa, precedence: 300}\n", "precedence",
     "sites.0.addons.0.options.rules.0.precedence"),
    ("          rules:\n            - {isp: ispb, proto: tcp, ports: '90-80'}\n", "ports",
     "sites.0.addons.0.options.rules.0.ports: '90-80' is not a port range LO-HI"),
    ("          rules:\n            - {isp: ispc}\n", "ispc", "sites.0.addons.0.options.rules.0.isp: ispc is not an ISP"),
    ("          split:\n            dst: '2001:db8:f000::/64'\n            weights: {ispa: 170, ispb: -70}\n",
     "weights", "sites.0.addons.0.options.split.weights.ispa: weight 170 is outside 0..100"),
    ("          split:\n            dst: '2001:db8:f000::/64'\n            weights: {ispa: 60, ispb: 30}\n",
     "weights", "sites.0.addons.0.options.split.weights: weights add up to 90, not 100"),
    ("          server: h1\n", "server: h1", "sites.0.addons.0.options.server: h1 is not a router"),
])
def test_a_policy_that_cannot_apply_is_refused_with_its_line(tmp_path, options, needle, words):
    path = _lab(tmp_path, options)
    with pytest.raises(TopologyError) as err:
        load_topology(path)
    assert f"{path}:{_line(path, needle)}: {words}" in str(err.value)


def test_the_server_and_every_host_run_and_isps_count_syns(tmp_path):
    path = _lab(tmp_path, "          refresh_s: 7\n          rules:\n            - {isp: ispb, proto: tcp, ports: '5201'}\n")
    net = build_netplan(load_topology(path))
    server = next(s for s in net.nodes["ra"].services if s.name == "dhcp6-policy")
    assert server.ready == "{node_dir}/dhcp6-policy.pid"
    table = json.loads(server.argv[server.argv.index("--policy") + 1])
    assert table["refresh"] == 7 and table["ports"] == [["::/0", 45, 101, 6, 5201, 5201]]
    for host in ("h1", "h2"):
        client = next(s for s in net.nodes[host].services if s.name == "policy-client")
        assert client.ready == "{node_dir}/policy.json"
    assert any("syn_out_ra" in t for t in net.nodes["ispa"].nft)
    assert any("syn_out_rb" in t for t in net.nodes["ispb"].nft)


def test_split_hands_out_slices_by_weight_and_merges_them():
    slices = split_slices(ipaddress.IPv6Network("2001:db8:f000::/64"), {"ispa": 70, "ispb": 30}, 4)
    assert [isp for _, isp in slices].count("ispa") == 11 and len(slices) == 16
    table = policy_table(PA, PolicyOptions(split=Split(dst="2001:db8:f000::/64", weights={"ispa": 70, "ispb": 30})))
    a_rows = [r for r in table["rows"] if r[2] == 100 and r[0] != PA["ispa"]]
    assert sum(2 ** (68 - ipaddress.IPv6Network(r[0]).prefixlen) for r in a_rows) == 11  # slices merged
    assert len(a_rows) < 11
    assert ["::/0", 40, 1] in table["rows"], "the RFC 6724 defaults go along: the table replaces them"


def test_a_rule_for_everything_replaces_the_default_row():
    table = policy_table(PA, PolicyOptions(rules=[{"dst": "::/0", "isp": "ispb"}]))
    assert [r for r in table["rows"] if r[0] == "::/0"] == [["::/0", 45, 101]]


def test_rfc7078_options_round_trip_through_a_reply():
    policy = Policy.from_json(policy_table(PA, PolicyOptions(rules=[{"isp": "ispb", "proto": "udp", "ports": "53"}])))
    reply = wire.Message(msg_type=wire.REPLY, xid=9, options=(*policy.options(), wire.RefreshTime(seconds=10)))
    raw = reply.to_bytes()
    assert raw[4:6] == wire.OPTION_ADDRSEL.to_bytes(2, "big")
    assert raw[9:11] == wire.OPTION_ADDRSEL_TABLE.to_bytes(2, "big"), "85 is encapsulated in 84, after the flags"
    back = Policy.from_reply(wire.Message.from_bytes(raw))
    assert back.rows == policy.rows and back.ports == policy.ports and back.refresh == 10


def test_a_row_whose_prefix_octets_do_not_fit_its_length_is_refused():
    bad = wire.AddrSelTable(label=1, precedence=1, prefix_len=48, prefix=b"\x20\x01").to_bytes()
    with pytest.raises(wire.DhcpDecodeError, match="2 prefix octets for a /48"):
        wire.AddrSelTable.from_bytes(bad)


def test_dnsmasq_gets_hex_options_and_the_refresh_time():
    policy = Policy.from_json({"rows": [["2001:db8:a001::/48", 40, 100]], "ports": [], "refresh": 5})
    lines = dnsmasq_options(policy).splitlines()
    assert lines[0].startswith("option6:84,00:00:55:00:09:64:28:30:20:01:0d:b8:a0:01")
    assert lines[-1] == "option6:information-refresh-time,5"


def test_host_files_from_a_policy():
    policy = Policy.from_json(policy_table(PA, PolicyOptions(rules=[{"isp": "ispb", "proto": "tcp", "ports": "5201"}])))
    assert "addrlabel add prefix 2001:db8:b001::/48 label 101" in addrlabel_batch(policy)
    gai = gai_conf(policy)
    assert "label ::/0 1" in gai and "precedence ::1/128 50" in gai
    addrs = [ipaddress.IPv6Address("2001:db8:a001:1::10"), ipaddress.IPv6Address("2001:db8:b001:1::10")]
    nft = nft_ruleset(policy, addrs)
    row = "meta l4proto tcp th dport 5201-5201"
    assert f"{row} meta mark set meta mark | 0x5300 ip6 saddr 2001:db8:b001:1::10 accept" in nft
    assert f"{row} counter snat ip6 to 2001:db8:b001:1::10" in nft
    # the site prefixes' own rows and RFC 6724's defaults steer nothing: no mark for them
    assert "daddr 2001:db8:a001::/48" not in nft and "daddr ::/0" not in nft


def test_a_destination_row_marks_connections_that_left_with_its_source():
    policy = Policy.from_json(policy_table(PA, PolicyOptions(rules=[{"dst": "2001:db8:f000::/64", "isp": "ispa"}])))
    addrs = [ipaddress.IPv6Address("2001:db8:a001:1::10"), ipaddress.IPv6Address("2001:db8:b001:1::10")]
    nft = nft_ruleset(policy, addrs)
    assert "ip6 daddr 2001:db8:f000::/64 ip6 saddr 2001:db8:a001:1::10 meta mark set meta mark | 0x5300" in nft
    assert nft.count("meta mark set") == 1


def test_the_server_argv_is_shell_safe(tmp_path):
    net = build_netplan(load_topology(_lab(tmp_path, "          refresh_s: 3\n")))
    argv = next(s for s in net.nodes["ra"].services if s.name == "dhcp6-policy").argv
    assert shlex.split(shlex.join(argv)) == argv and "--iface" in argv
