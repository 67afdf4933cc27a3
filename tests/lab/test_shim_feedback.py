"""The shim's upper-layer feedback in a lab: a path goes silent under a TCP stream and the switch comes
from TCP's retransmission timeouts (sock_diag), well before REAP's Send Timeout; a healthy path that drops
packets at random costs probes, not switches.  (The by-hand link-down checks: test_shim_by_hand.py.)"""

import json
import sys
import time
from pathlib import Path

import pytest

from testbed.faults import prepare
from testbed.pytest_plugin import wait_until
from testbed.scenario.model import Loss

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
