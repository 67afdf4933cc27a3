"""The shim in a lab, driven by hand: ISP A1's router loses its ISP link under a ping, a path goes silent
under a TCP stream, a healthy path drops packets at random.  Checks what the agents then believe:
no context with themselves or with the router that sent the ICMP error, no pair left under test, the
dead pair not reachable; a silent cut is noticed through TCP's retransmission timeout (upper-layer
feedback), well before REAP's Send Timeout; random loss costs probes, not switches."""

import json
import sys
import time
from pathlib import Path

import pytest

from testbed.faults import prepare
from testbed.pytest_plugin import wait_until
from testbed.scenario.model import LinkDown, Loss

pytestmark = [pytest.mark.lab, pytest.mark.mhlab_topology("topologies/two-sites-shim.yaml", name="sffb")]


def shimctl(lab, node, *args):
    res = lab[node].run([str(Path(sys.executable).parent / "shimctl"), "--socket", str(lab[node].dir / "shim.sock"),
                         *args, "--json"], timeout=20)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def events_after(lab, node, since, kind=None):
    return [e for e in shimctl(lab, node, "events") if e["time"] > since and (kind is None or e["kind"] == kind)]


def clock(lab, node):
    return max((e["time"] for e in shimctl(lab, node, "events")), default=0.0)


def pairs(lab, node, peer):
    return {(p["local"], p["remote"]): p for p in shimctl(lab, node, "pairs") if p["peer"] == peer}


def link_in_use(lab, peer):
    """The access link of site A's ISP that hA's context with ``peer`` uses now."""
    preferred = next(p for p in pairs(lab, "hA", peer).values() if p["preferred"])
    return "ispa1-ra1" if preferred["local"] == lab.plan.address("hA", "ispa1") else "ispa2-ra2"


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


def _tcpseq(lab, tmp_path, seconds):
    a1, b1 = lab.plan.address("hA", "ispa1"), lab.plan.address("hB", "ispb1")
    recv = lab["hB"].popen([sys.executable, "-m", "agents.traffic.tcpseq", "recv", "--bind", b1, "--port", "5411",
                            "--duration", str(seconds + 2), "--log", str(tmp_path / "r.jsonl")], name="tcpseq-sffb")
    time.sleep(0.5)
    send = lab["hA"].popen([sys.executable, "-m", "agents.traffic.tcpseq", "send", "--dst", b1, "--src", a1,
                            "--port", "5411", "--duration", str(seconds), "--log", str(tmp_path / "s.jsonl")],
                           name="tcpseq-sffb")
    return recv, send


def test_silent_cut_is_noticed_through_tcp_timeouts(lab, tmp_path):
    b1 = lab.plan.address("hB", "ispb1")
    recv, send = _tcpseq(lab, tmp_path, 8)
    try:
        wait_until(lambda: any(c["state"] == "established" and c["peer_ulid"] == b1
                               for c in shimctl(lab, "hA", "contexts")), 10, what="a context hA -> hB")
        time.sleep(1.0)
        since = clock(lab, "hA")
        cut = prepare(Loss(kind="loss", link=link_in_use(lab, b1), percent=100, at=0), lab)
        cut.do()
        try:
            switched = wait_until(lambda: events_after(lab, "hA", since, "pair-switched"), 10, what="a switch")
        finally:
            cut.revert()
        assert switched[0]["cause"] in ("tcp-rto", "tcp-tlp"), switched  # not REAP's Send Timeout (3 s tuned)
        assert events_after(lab, "hA", since, "failure-suspected")
    finally:
        send.wait(timeout=20)
        recv.wait(timeout=20)
    assert send.returncode == 0


def test_random_loss_costs_probes_not_switches(lab, tmp_path):
    b1 = lab.plan.address("hB", "ispb1")
    recv, send = _tcpseq(lab, tmp_path, 12)
    try:
        wait_until(lambda: any(c["state"] == "established" and c["peer_ulid"] == b1
                               for c in shimctl(lab, "hA", "contexts")), 10, what="a context hA -> hB")
        since = clock(lab, "hA")
        lossy = prepare(Loss(kind="loss", link=link_in_use(lab, b1), percent=5, at=0), lab)
        lossy.do()
        try:
            time.sleep(10)
        finally:
            lossy.revert()
    finally:
        send.wait(timeout=20)
        recv.wait(timeout=20)
    got = events_after(lab, "hA", since)
    suspected = [e for e in got if e["kind"] == "failure-suspected"]
    kept = [e for e in got if e["kind"] == "pair-kept"]
    switched = [e for e in got if e["kind"] == "pair-switched"]
    print(f"suspected {len(suspected)}, kept {len(kept)}, switched {len(switched)}")
    # every switch follows a suspicion whose probe on the pair in use did not come back
    assert len(switched) <= len(suspected) - len(kept), got
    assert all(e.get("cause") in ("tcp-rto", "tcp-tlp") for e in switched), switched
