"""The shim agents' packet observer in a lab: it still sees flows start (a TCP connection between two
shim hosts gets its context from the observer alone), and once the eBPF data path counts the context,
a bulk transfer reaches the observer by a handful of packets, not one per segment and ACK (its socket
filter drops them in the kernel).  A peer without a shim (the core's server) is not observed either
once the agent knows it has none.  Before the filter, a 10 s transfer cost each agent 1.4-3.5 CPU-s."""

import json
import subprocess
import time

import pytest
from test_shim_feedback import shimctl

from testbed.pytest_plugin import wait_until

pytestmark = [pytest.mark.lab, pytest.mark.mhlab_topology("topologies/two-sites-shim.yaml", name="soobs")]


def observed(lab, node):
    return shimctl(lab, node, "status")["observer"]["packets"]


def contexts_with(lab, node, peers):
    return [c for c in shimctl(lab, node, "contexts") if c["peer_ulid"] in peers and c["state"] == "established"]


def test_a_bulk_transfer_with_a_context_reaches_the_observer_by_a_handful_of_packets(lab):
    a1 = lab.plan.address("hA", "ispa1")
    hb = {lab.plan.address("hB", "ispb1"), lab.plan.address("hB", "ispb2")}
    before_ping = contexts_with(lab, "hA", hb)
    lab["hA"].run(["ping", "-c", "3", "-i", "0.2", "-I", a1, lab.plan.address("hB", "ispb1")], timeout=20)
    # a flow start is what the policy needs from the observer (unless a context of these hosts already
    # carries it: the engine counts any of their locator pairs as that context's)
    ctx = wait_until(lambda: contexts_with(lab, "hA", hb), 10, what="hA's context with hB")[0]
    assert before_ping or ctx["local_ulid"] == a1
    assert ctx["datapath"]["mode"] == "ebpf"
    local, peer = ctx["local_ulid"], ctx["peer_ulid"]  # iperf3 between the ULIDs: the context's traffic
    srv = lab["hB"].popen(["iperf3", "-s", "-1", "-B", peer, "-p", "5321"], name="iperf3-soobs")
    try:
        time.sleep(0.5)
        before = {n: observed(lab, n) for n in ("hA", "hB")}
        res = lab["hA"].run(["iperf3", "-c", peer, "-B", local, "-p", "5321", "-t", "3", "-J"], timeout=40)
        assert res.returncode == 0, res.stderr
    finally:
        try:
            srv.wait(timeout=30)
        except subprocess.TimeoutExpired:
            srv.kill()
    seen = {n: observed(lab, n) - before[n] for n in ("hA", "hB")}
    counted = next(c for c in contexts_with(lab, "hA", hb) if c["local_ulid"] == local)["datapath"]["counters"]
    sent = counted["ulid_out"]["packets"] + counted.get("translated_out", {}).get("packets", 0)
    assert json.loads(res.stdout)["end"]["sum_received"]["bytes"] > 10_000_000
    assert sent > 2000, counted  # the data path saw the transfer (segments of up to 64 KiB)
    assert seen["hA"] < 50 and seen["hB"] < 50, (seen, sent)  # a few packets of iperf3's control at most


def test_a_peer_without_shim_is_not_observed_after_the_agent_learnt_it(lab):
    a1, srv = lab.plan.address("hA", "ispa1"), lab.plan.address("srv")
    lab["hA"].run(["ping", "-c", "2", "-i", "0.2", "-I", a1, srv], timeout=20)
    wait_until(lambda: srv in shimctl(lab, "hA", "status")["peers_without_shim"], 15,
               what="hA remembering srv as a host without shim")
    before = observed(lab, "hA")
    res = lab["hA"].run(["ping", "-q", "-c", "100", "-i", "0.01", "-I", a1, srv], timeout=30)
    assert res.returncode == 0, res.stdout
    assert observed(lab, "hA") - before < 10  # 200 packets went by
