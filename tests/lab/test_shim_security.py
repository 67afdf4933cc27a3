"""Shim security (thesis 4.3; RFC 5533 §16) with a scapy attacker in the lab (srv, which has no shim).

Redirection: a forged Update Request that points hB's context with hA to the attacker's address (outside
hA's HBA set) is refused and counted, and the flow goes on where it was.  Malformed shim packets at the data
path never crash the agent."""

import json
import sys
from pathlib import Path

import pytest

from testbed.pytest_plugin import wait_until

pytestmark = [pytest.mark.lab, pytest.mark.mhlab_topology("topologies/two-sites-shim.yaml", name="tshimsec")]

FORGE = """
import ipaddress, sys
from scapy.all import IPv6, Raw, send
from agents.shim import messages as m
victim_src, target, tag, attacker = sys.argv[1], sys.argv[2], int(sys.argv[3], 0), sys.argv[4]
loclist = m.LocatorList(generation=1000, methods=(0,), locators=(ipaddress.IPv6Address(attacker),))
forged = m.encode(m.UpdateRequest(receiver_context_tag=tag, request_nonce=77, options=(loclist,)))
garbage = [b"", b"\\x3b", forged[:5], forged + b"\\xff" * 1300, bytes(range(40))]
send([IPv6(src=victim_src, dst=target, nh=140) / Raw(forged)] * 5 +
     [IPv6(src=victim_src, dst=target, nh=140) / Raw(g) for g in garbage], verbose=0)
"""


def shimctl(lab, node, *args):
    argv = [str(Path(sys.executable).parent / "shimctl"), "--socket", str(lab[node].dir / "shim.sock"), *args]
    res = lab[node].run(argv + (["--json"] if args[0] != "status" else []), timeout=20)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_forged_update_request_is_refused_and_the_flow_goes_on(lab):
    a, b = lab.plan.address("hA", "ispa1"), lab.plan.address("hB", "ispb1")
    attacker = lab.plan.address("srv")
    pinger = lab["hA"].popen(["ping", "-n", "-i", "0.1", "-I", a, b], name="ping-test")
    try:
        ctx = wait_until(lambda: [c for c in shimctl(lab, "hB", "contexts")
                                  if c["peer_ulid"] == a and c["state"] == "established"], 10,
                         what="hB's context with hA")[0]
        before = shimctl(lab, "hB", "status")["counters"]["proof_failures"]
        res = lab["srv"].run([sys.executable, "-c", FORGE, a, b, str(ctx["local_context_tag"]), attacker], timeout=60)
        assert res.returncode == 0, res.stderr
        wait_until(lambda: shimctl(lab, "hB", "status")["counters"]["proof_failures"] >= before + 5, 10,
                   what="the forged requests counted as proof failures")
        pairs = shimctl(lab, "hB", "pairs")
        assert not [p for p in pairs if p["remote"] == attacker], "the attacker's address became a locator"
        assert lab["hB"].processes() and all(alive for p, alive in lab["hB"].processes() if p.name == "shim")
    finally:
        pinger.terminate()
        pinger.wait(timeout=5)
    out = lab["hA"].run(["ping", "-n", "-c", "3", "-W", "1", "-I", a, b]).stdout
    assert " 0% packet loss" in out, out  # the flow still goes where it was, and the agent is alive
