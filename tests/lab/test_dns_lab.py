"""The dns add-on in a real lab: PowerDNS answers from inside the nodes, every node's resolver uses it, a
weighted name is ordered by the server, a client outside the site connects by name after ISP A's access
link fails, and a server that cannot start fails the deploy naming the node and the daemon's words."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest

from testbed.errors import LabError
from testbed.lab import Lab
from testbed.mechanisms import dns
from testbed.scenario.model import LinkDown
from testbed.faults import prepare
from testbed.rundir import RunDir

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "topologies" / "dns-two-isp.yaml"
H1 = {"ispa": "2001:db8:a001:1::10", "ispb": "2001:db8:b001:1::10"}

pytestmark = [pytest.mark.lab, pytest.mark.mhlab_topology(str(LAB), name="dnt1")]


def _byname(lab, node: str, client: str, count: int, timeout: float = 2.0) -> list[dict]:
    res = lab[node].run(["env", f"PYTHONPATH={ROOT}", "python3", "-m", "agents.traffic.byname", "connect",
                         "--client", client, "--name", "h1.lab.example", "--interval-ms", "20",
                         "--count", str(count), "--connect-timeout-ms", f"{timeout * 1000:g}"], timeout=60, check=True)
    return [e for e in map(json.loads, res.stdout.splitlines()) if e["ev"] == "connect"]


def test_dig_in_a_node_gets_every_address_from_the_lab_server(lab):
    out = lab["c1"].run(["dig", "+short", "AAAA", "h1.lab.example"], check=True).stdout.split()
    assert sorted(out) == sorted(H1.values())
    srv = lab["h2"].run(["getent", "hosts", "srv"], check=True).stdout.split()  # glibc, search lab.example
    assert srv == ["2001:db8:f000::11", "srv.lab.example"]
    flags = lab["ca"].run(["kdig", "@2001:db8:f000::10", "SOA", "lab.example"], check=True).stdout
    assert "status: NOERROR" in flags and " aa" in flags.split("Flags:")[1].split(";")[0]


def test_resolv_conf_is_private_to_the_nodes(lab):
    assert "nameserver 2001:db8:f000::10" in lab["ra"].run(["cat", "/etc/resolv.conf"], check=True).stdout
    assert "2001:db8:f000::10" not in Path("/etc/resolv.conf").read_text()
    mounts = [r for r in RunDir.of(lab.name).records() if r.get("kind") == "mount" and r["target"] == "/etc/resolv.conf"]
    assert {m["node"] for m in mounts} >= {"h1", "c1", "ca", "cb", "ra", "core", "ns"}


def test_the_server_orders_the_rrset_by_weight(lab):
    firsts = Counter(lab["c1"].run(["dig", "+short", "AAAA", "h1.lab.example"], check=True).stdout.split()[0]
                     for _ in range(60))
    share = firsts[H1["ispa"]] / 60
    assert 0.45 <= share <= 0.92, f"ISP A first in {share:.0%} of 60 answers; configured 70 %"  # 5 sigma


def test_new_inbound_connections_by_name_survive_the_access_link_failure(lab):
    before = _byname(lab, "c1", "happy", 40)  # the server puts ISP A first 70 % of the time: 40 show both
    assert all(e["ok"] for e in before) and {e["remote"] for e in before} == set(H1.values())
    action = prepare(LinkDown(kind="link-down", at=0, link=("ispa", "ra")), lab)
    action.do()
    try:
        for client in ("happy", "dnsorder"):
            after = _byname(lab, "c1", client, 8, timeout=1.0)
            assert all(e["ok"] for e in after), [e["error"] for e in after]
            assert {e["remote"] for e in after} == {H1["ispb"]}
        tried = [e["tried"] for e in after]
        assert any(t == [H1["ispa"], H1["ispb"]] for t in tried), "the dead ISP-A address was tried first sometimes"
    finally:
        action.revert()


def test_a_server_that_cannot_start_fails_the_deploy_with_its_own_words(monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    monkeypatch.setattr(dns, "ARGV", dns.ARGV + ("--no-such-setting=1",))
    with pytest.raises(LabError) as err:
        Lab.deploy(LAB, name="dnt2")
    assert "ns: pdns_server" in str(err.value) and "no-such-setting" in str(err.value)
    assert not RunDir.of("dnt2").path.exists(), "nothing half-built"
