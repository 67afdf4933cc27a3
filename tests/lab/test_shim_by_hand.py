"""The shim driven by hand, in a lab of its own (what the other shim tests leave behind - switched pairs,
contexts on other locators - must not decide this one): ISP A1's router loses its ISP link under a ping.
Checks what the agents then believe: no context with themselves or with the router that sent the ICMP
error, no pair left under test, the dead pair not reachable."""

import time

import pytest
from test_shim_feedback import clock, events_after, pairs, shimctl

from testbed.faults import prepare
from testbed.pytest_plugin import wait_until
from testbed.scenario.model import LinkDown

pytestmark = [pytest.mark.lab, pytest.mark.mhlab_topology("topologies/two-sites-shim.yaml", name="sfhand")]


def test_link_down_under_a_ping_leaves_consistent_state(lab):
    a1, a2 = lab.plan.address("hA", "ispa1"), lab.plan.address("hA", "ispa2")
    b1, b2 = lab.plan.address("hB", "ispb1"), lab.plan.address("hB", "ispb2")
    ping = lab["hA"].popen(["ping", "-q", "-i", "0.02", "-w", "20", "-I", a1, b1], name="ping-sffb")
    try:
        wait_until(lambda: any(c["state"] == "established" for c in shimctl(lab, "hA", "contexts")), 10,
                   what="a context hA -> hB")
        since = clock(lab, "hA")
        down = prepare(LinkDown(kind="link-down", link=["ra1", "ispa1"], at=0), lab)
        down.do()
        try:
            wait_until(lambda: events_after(lab, "hA", since, "pair-switched"), 10, what="hA switching pairs")
            time.sleep(2 * 0.2 + 0.5)  # one tuned probe round to settle, and margin
            contexts = shimctl(lab, "hA", "contexts")
            ours = set(shimctl(lab, "hA", "status")["ulids"])
            assert not [c for c in contexts if c["peer_ulid"] in ours], contexts  # no context with ourselves
            assert [c["peer_ulid"] for c in contexts] == [b1], contexts  # none with the router either
            assert not events_after(lab, "hA", since, "i1-sent"), "an I1 went to the ICMP error's source"
            table = pairs(lab, "hA", b1)
            assert not [k for k, p in table.items() if p["state"] == "test"], table
            assert table[(a1, b1)]["state"] == "unreachable", table  # the dead pair is not shown reachable
            assert table[(a1, b2)]["state"] in ("unreachable", "indeterminate"), table
            assert table[(a2, b1)]["preferred"] or table[(a2, b2)]["preferred"], table
        finally:
            down.revert()
    finally:
        ping.terminate()
        ping.wait(timeout=5)
