"""``kind: i2p`` lab files without root: validation errors with file:line, the NetPlan (one LAN, IPv4 from
198.18.0.0/15, no route out, i2pd and balancer services), rendered files, reseed zip, probe analysis."""

from __future__ import annotations

import io
import ipaddress
import json
import zipfile
from pathlib import Path

import pytest
import yaml

from agents.balancer.keys import DestinationKeys
from agents.balancer.sam import parse_reply, split_datagram
from testbed.errors import TopologyError
from testbed.i2p.analysis import Request, answered_fraction, recovery_time
from testbed.i2p.netplan import i2pd_argv
from testbed.i2p.reseed import RouterInfoError, i2p_b64, identity_hash, reseed_zip
from testbed.i2p.topology import LAB_RANGE, I2pLab
from testbed.kinds import load_lab, netplan_for, parse_lab
from testbed.render import render
from testbed.yamlmarks import load_marked

REPO = Path(__file__).resolve().parents[3]
TOPOLOGY = REPO / "topologies" / "i2p-invisible-multihoming.yaml"


def lab_from(text: str, tmp_path: Path) -> I2pLab:
    path = tmp_path / "lab.yaml"
    path.write_text(text)
    return load_lab(path)


def test_the_shipped_file_parses_and_round_trips() -> None:
    model = load_lab(TOPOLOGY)
    assert isinstance(model, I2pLab) and model.kind == "i2p" and model.hosting == 3
    # the runtime re-parses the dumped model from the run directory (Lab.attach)
    dumped = yaml.safe_dump(model.model_dump(exclude_none=True, mode="json"), sort_keys=False)
    again = parse_lab(load_marked("run/topology.yaml", dumped))
    assert again.model_dump() == model.model_dump()


@pytest.mark.parametrize("snippet, line, field, words", [
    ("hosting: 0\n", 3, "hosting", "greater than or equal to 1"),
    ("subnet: 10.0.0.0/24\n", 3, "subnet", "outside 198.18.0.0/15"),
    ("subnet: 198.18.0.1/24\n", 3, "subnet", "host bits"),
    ("netid: 2\n", 3, "netid", "greater than or equal to 3"),
    ("floodfills: 3\n", 3, "floodfills", "less than or equal to 2"),
    ("mode: anycast\n", 3, "mode", "'balancer' or 'naive'"),
    ("balancer:\n  inbound_quantity: 17\n", 4, "balancer.inbound_quantity", "16"),
    ("hostng: 3\n", 3, "hostng", "unknown field"),
])
def test_errors_name_file_line_and_field(tmp_path: Path, snippet: str, line: int, field: str, words: str) -> None:
    with pytest.raises(TopologyError) as exc:
        lab_from("kind: i2p\nname: x\n" + snippet, tmp_path)
    (problem,) = exc.value.problems
    assert (problem.line, problem.field) == (line, field)
    assert words in problem.message
    assert str(problem).startswith(f"{tmp_path / 'lab.yaml'}:{line}: {field}: ")


def test_unknown_kind_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match="unknown lab kind 'tor'"):
        lab_from("kind: tor\nname: x\n", tmp_path)


def test_netplan_one_lan_ipv4_no_route_out() -> None:
    model = I2pLab(name="t", hosting=4, clients=2, floodfills=2)
    net = netplan_for(model)
    routers = [n for n in net.nodes.values() if n.role == "router"]
    assert [n.name for n in routers] == ["ff1", "ff2", "r1", "r2", "r3", "r4", "c1", "c2"]
    assert {link.b for link in net.links} == {"br:i2p"} and len(net.links) == len(routers)
    addresses = [ipaddress.IPv4Interface(a) for n in routers for i in n.ifaces for a in i.addresses]
    assert len(set(addresses)) == len(routers)
    assert all(a.ip in LAB_RANGE for a in addresses)
    assert all(not n.routes for n in net.nodes.values())  # not even a default route
    assert net.nodes["bal"].ifaces == []  # the balancer reaches the frontends over unix sockets only


def test_services_per_role() -> None:
    net = netplan_for(I2pLab(name="t", hosting=2, clients=1))
    names = {n: [s.name for s in node.services] for n, node in net.nodes.items()}
    assert names == {"bal": ["backend", "balancer"], "br:i2p": [], "ff1": ["i2pd"], "r1": ["i2pd", "frontend"],
                     "r2": ["i2pd", "frontend"], "c1": ["i2pd"]}
    ff, r1, c1 = (net.nodes[n].services[0].argv for n in ("ff1", "r1", "c1"))
    assert "--floodfill" in ff and "--floodfill" not in r1
    assert "--i2cp.enabled=true" in r1 and "--i2cp.enabled=false" in c1
    assert "--sam.enabled=true" in c1 and "--sam.enabled=false" in r1
    for argv in (ff, r1, c1):  # private, quiet, and the datadir on the command line
        assert {"--netid=77", "--nettime.enabled=false", "--ssu2.enabled=false", "--upnp.enabled=false",
                "--datadir={node_dir}"} <= set(argv)
    front = net.nodes["r1"].services[1].argv
    assert "unix:{node_dir}/../bal/balancer.sock" in front and "outbound.length=0" in front
    bal = net.nodes["bal"].services[1].argv
    assert bal[bal.index("--publisher") + 1] == "r1" and bal.count("--publisher") == 1


def test_hosting_routers_without_transit_and_plain_transit_routers(tmp_path: Path) -> None:
    """``hosting_transit: false`` puts i2pd's --notransit on the hosting routers only (so no client's tunnel
    can go through one); ``transit: K`` adds plain routers t1..tK after the others (addresses unchanged)."""
    default = netplan_for(I2pLab(name="t", hosting=2, clients=1))
    assert not any("--notransit" in s.argv for n in default.nodes.values() for s in n.services)
    model = lab_from("kind: i2p\nname: t\nhosting: 2\nclients: 1\ntransit: 2\nhosting_transit: false\n", tmp_path)
    net = netplan_for(model)
    assert [n for n, _ in model.routers()] == ["ff1", "r1", "r2", "c1", "t1", "t2"]
    with_notransit = {n for n, node in net.nodes.items() if any("--notransit" in s.argv for s in node.services)}
    assert with_notransit == {"r1", "r2"}
    assert [s.name for s in net.nodes["t1"].services] == ["i2pd"]
    t1 = net.nodes["t1"].services[0].argv
    assert {"--i2cp.enabled=false", "--sam.enabled=false"} <= set(t1) and "--floodfill" not in t1
    assert net.nodes["c1"].ifaces[0].addresses == default.nodes["c1"].ifaces[0].addresses
    render(net, tmp_path / "out")
    assert "--notransit" in (tmp_path / "out" / "nodes" / "r1" / "services.txt").read_text()
    assert "--notransit" not in (tmp_path / "out" / "nodes" / "c1" / "services.txt").read_text()


def test_naive_mode_runs_the_destination_on_each_router() -> None:
    net = netplan_for(I2pLab(name="t", hosting=3, mode="naive"))
    assert "bal" not in net.nodes
    for r in ("r1", "r2", "r3"):
        (i2pd, dest) = net.nodes[r].services
        assert dest.argv[3] == "run" and dest.argv[dest.argv.index("--publisher") + 1] == r


def test_floodfill_loglevel() -> None:
    model = I2pLab(name="t", floodfill_loglevel="debug")
    assert "--loglevel=debug" in i2pd_argv(model, "floodfill", "198.18.0.1")
    assert "--loglevel=info" in i2pd_argv(model, "hosting", "198.18.0.2")


def test_render_writes_i2pd_config_and_the_same_keys_everywhere(tmp_path: Path) -> None:
    model = load_lab(TOPOLOGY)
    render(netplan_for(model), tmp_path)
    node = tmp_path / "nodes"
    conf = (node / "r1" / "i2pd.conf").read_text()
    assert "urls =\n" in conf and f"zipfile = {node / 'r1' / 'reseed.zip'}" in conf
    assert "address add 198.18.0.2/24 dev eth0" in (node / "r1" / "setup.ip").read_text()
    assert "disable_ipv6 = 1" in (node / "r1" / "sysctl.conf").read_text()
    keys = {n: (node / n / "keys.json").read_text() for n in ("bal", "r1", "r2", "r3")}
    assert len(set(keys.values())) == 1
    loaded = DestinationKeys.load(node / "r1" / "keys.json")
    assert loaded == DestinationKeys.from_seed("i2pmh") == model.destination_keys()
    assert not (node / "ff1" / "keys.json").exists()
    assert "--floodfill" in (node / "ff1" / "services.txt").read_text()  # the command lines, for review
    assert "frontend: python3 -m agents.balancer frontend" in (node / "r1" / "services.txt").read_text()
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert plan["segments"][0]["subnets"] == ["198.18.0.0/24"]


def test_seed_changes_the_destination() -> None:
    a = I2pLab(name="a").destination_keys().destination.b32_address
    b = I2pLab(name="a", seed="other").destination_keys().destination.b32_address
    assert a != b and a == I2pLab(name="a").destination_keys().destination.b32_address


def router_info(cert_payload: bytes = b"\x00\x07\x00\x04") -> bytes:
    return bytes(range(256)) + bytes(128) + b"\x05" + len(cert_payload).to_bytes(2, "big") + cert_payload + b"rest"


def test_reseed_zip_names_entries_by_identity_hash() -> None:
    info = router_info()
    digest = identity_hash(info)
    assert digest == __import__("hashlib").sha256(info[:391]).digest()
    archive = zipfile.ZipFile(io.BytesIO(reseed_zip({"r1": info})))
    (name,) = archive.namelist()
    assert name == f"routerInfo-{i2p_b64(digest)}.dat" and archive.read(name) == info
    assert "+" not in i2p_b64(b"\xfb\xff") and "/" not in i2p_b64(b"\xff\xff")


@pytest.mark.parametrize("bad", [b"", bytes(300), router_info()[:389]])
def test_reseed_zip_refuses_truncated_router_infos(bad: bytes) -> None:
    with pytest.raises(RouterInfoError, match="r9"):
        reseed_zip({"r9": bad})


def test_recovery_time_and_fractions() -> None:
    oks = [True] * 4 + [False] * 3 + [True] * 5
    reqs = [Request(i, 100.0 + i, ok, 5.0 if ok else None) for i, ok in enumerate(oks)]
    assert recovery_time(reqs, 102.0) == 5.0  # request 7 (sent at 107) is the first of the good run
    assert recovery_time(reqs, 108.0) == 0.0
    assert recovery_time(reqs[:6], 102.0) is None  # still failing at the end
    assert answered_fraction(reqs, 100.0, 112.0, 4.0) == [(0.0, 1.0), (4.0, 0.25), (8.0, 1.0)]


def test_sam_reply_and_datagram_parsing() -> None:
    assert parse_reply("SESSION STATUS RESULT=OK DESTINATION=abc=\n") == ("SESSION STATUS",
                                                                         {"RESULT": "OK", "DESTINATION": "abc="})
    assert split_datagram(b"AAAA~-==\nprobe 7") == ("AAAA~-==", b"probe 7")
    with pytest.raises(ValueError):
        split_datagram(b"no header line")
