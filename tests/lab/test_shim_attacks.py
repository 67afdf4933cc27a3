"""The threats of thesis 4.3 in a lab: an attacker on the core's server ``srv`` (off the path between hA
and hB) forges shim messages with scapy (``agents.shim.attack``).  A context tag it learnt while on the
path once buys it nothing: hB drops what it sends and answers none of it.  A context that names a victim
(hA) as the attacker's locator sends the victim nothing, even after the attacker walks away mid-stream
and hB explores.  An unknown critical option is answered by an ICMPv6 parameter problem."""

import ipaddress
import json
import sys
import time

import pytest
from test_shim_feedback import shimctl

from testbed.pytest_plugin import wait_until

pytestmark = [pytest.mark.lab, pytest.mark.mhlab_topology("topologies/two-sites-shim.yaml", name="shatk")]
ATTACK = [sys.executable, "-m", "agents.shim.attack"]


def forge(lab, *args):
    res = lab["srv"].run([*ATTACK, "forge", "--src", lab.plan.address("srv"), *args], timeout=60)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def hb_context_with_ha(lab):
    a1 = lab.plan.address("hA", "ispa1")
    ping = lab["hA"].popen(["ping", "-q", "-c", "20", "-i", "0.05", "-I", a1, lab.plan.address("hB", "ispb1")],
                           name="ping-shatk")
    ping.wait(timeout=30)
    return wait_until(lambda: next((c for c in shimctl(lab, "hB", "contexts")
                                    if c["peer_ulid"] == a1 and c["state"] == "established"), None), 10,
                      what="hB's context with hA")


def test_unknown_critical_option_is_answered_by_a_parameter_problem(lab):
    b1 = lab.plan.address("hB", "ispb1")
    got = forge(lab, "--dst", b1, "--kind", "critical", "--count", "3", "--interval", "0.2")
    assert got["parameter_problems"], got
    assert all(p == {"code": 0, "pointer": 40 + 16} for p in got["parameter_problems"]), got  # the option's Type
    assert shimctl(lab, "hB", "status")["counters"]["critical_options"] >= 3


def test_a_tag_learnt_on_the_path_buys_nothing_off_it(lab):
    ctx = hb_context_with_ha(lab)
    tag, b1 = ctx["local_context_tag"], lab.plan.address("hB", "ispb1")
    before = shimctl(lab, "hB", "status")["counters"]
    for kind, count in (("keepalive", 10), ("probe", 5), ("update", 5)):
        got = forge(lab, "--dst", b1, "--tag", tag, "--kind", kind, "--count", str(count), "--interval", "0.05",
                    "--listen", "0.5")
        assert got["shim_replies"] == 0, got  # no Update Ack, no probe answered
    after = shimctl(lab, "hB", "status")["counters"]
    refused = [after[k] - before[k] for k in ("foreign_sources", "proof_failures")]
    assert refused[0] >= 15 - 2 and refused[1] >= 5 - 1, (before, after)  # a loss or two; the update is
    # not from a stranger (it names its sender as the new locator) but that locator proves nothing
    now = next(c for c in shimctl(lab, "hB", "contexts") if c["local_context_tag"] == tag)
    assert now["peer_locators"] == ctx["peer_locators"]  # not redirected


def test_a_victim_named_as_the_attackers_locator_gets_nothing(lab, tmp_path):
    srv = ipaddress.IPv6Interface(lab.plan.address("srv") + "/64")
    b1 = lab.plan.address("hB", "ispb1")
    # the victim: an address of hA's ISP-A2 /64 that none of hA's own contexts uses (hB's REAP probes to
    # hA's locators, for the context an earlier test made, are ordinary traffic and would be counted)
    a2 = lab.plan.address("hA", "ispa2")
    victim = str(ipaddress.IPv6Interface(a2 + "/64").network[0xdead])
    a2_dev = lab["hA"].run(f"ip -6 -o addr show to {a2}/128 | awk 'NR==1{{print $2}}'").stdout.strip()
    lab["hA"].run(["ip", "-6", "addr", "replace", f"{victim}/64", "dev", a2_dev, "nodad"], check=True)
    count = lab["hA"].popen([*ATTACK, "watch", "--dst", victim, "--from-net", "2001:db8:b100::/40",
                             "--from-net", "2001:db8:b200::/40", "--seconds", "60"], name="watch-shatk",
                            stdout=open(tmp_path / "victim.jsonl", "w"))
    wait_until(lambda: "ready" in (tmp_path / "victim.jsonl").read_text(), 60, what="the victim's counter")
    sock = str(lab["srv"].dir / "attacker.sock")
    attacker = lab["srv"].popen([*ATTACK, "flood", "--peer", b1, "--victim", victim, "--prefix", str(srv.network),
                                 "--socket", sock, "--duration", "6"], name="attack-shatk",
                                stdout=open(tmp_path / "attacker.jsonl", "w"))
    try:
        ulid = wait_until(lambda: next((json.loads(line)["ulids"][0] for line in open(tmp_path / "attacker.jsonl")
                                        if '"ready"' in line), None), 60, what="the attacker's ULID")  # an HBA address on srv's /64
        dev = lab["srv"].run(f"ip -6 -o addr show to {srv.network} | awk 'NR==1{{print $2}}'").stdout.strip()
        lab["srv"].run(["ip", "-6", "addr", "add", f"{ulid}/64", "dev", dev, "nodad"], check=True)
        ctx = wait_until(lambda: next((c for c in shimctl(lab, "hB", "contexts") if c["peer_ulid"] == ulid
                                       and c["state"] == "established"), None), 15, what="hB's context with the attacker")
        assert victim in [loc["address"] for loc in ctx["peer_locators"]["locators"]]
        stream = lab["hB"].popen([sys.executable, "-m", "agents.traffic.udpcbr", "send", "--dst", ulid, "--src", b1,
                                  "--port", "5499", "--interval-ms", "10", "--duration", "8",
                                  "--log", str(tmp_path / "udp.jsonl")], name="udp-shatk")
        stream.wait(timeout=30)
    finally:
        attacker.wait(timeout=20)
        time.sleep(1.0)  # what hB sent last has arrived
        count.terminate()
    count.wait(timeout=30)
    watched = json.loads((tmp_path / "victim.jsonl").read_text().strip().splitlines()[-1])
    assert watched["packets"] == 0, watched
    events = [e for e in shimctl(lab, "hB", "events") if e.get("peer") == ulid]
    assert [e for e in events if e["kind"] == "failure-detected"], events  # hB did explore, after the attacker left
    assert not [p for p in shimctl(lab, "hB", "pairs") if p["peer"] == ulid and p["remote"] == victim and p["preferred"]]
