"""The shim data path with real kernels: a TCP flow between ULIDs survives an ISP cut.

Root only (``-m lab``).  The test builds its own four namespaces (``agents.shim.twohosts``:
two hosts, each with one address per ISP, and two ISP routers), named ``mhshim<pid>-*``,
and deletes them in teardown.  One scenario runs once for the module:

1. both daemons start with ``--datapath ebpf`` (tuned timers); a context is set up;
2. a sequence-numbered TCP stream runs A1 -> B1 (both ULIDs);
3. ISP 1 silently drops everything (nftables in r1): REAP switches to (A2, B2), the data
   path translates, and the *same* connection carries on; the gap is measured;
4. while translated, scapy throws malformed, truncated, oversized and forged shim packets
   at hA; the stream's bytes are checked for corruption;
5. a bulk transfer on a new connection between the ULIDs proves full-size segments pass (and
   no router answered Packet Too Big), translated at eth2's egress: no steering device, the
   /128 route to the peer ULID goes out of eth2 with the lower MTU, nothing redirected.

Under the working stream (2 s before the cut) the daemon sleeps: it reads TCP's state about once a
second, not every 20 ms; the cut reaches it as the kernel's quiet signal.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(not shutil.which("clang"), reason="needs clang (eBPF data path)"),
]

RECEIVER = r"""
import json, socket, sys, time
host, port, duration = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
srv = socket.socket(socket.AF_INET6); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((host, port)); srv.listen(4); srv.settimeout(duration)
conn, peer = srv.accept(); conn.settimeout(duration)
start, total, arrivals, corrupt, accepted = time.time(), 0, [], 0, 1
expect = 0
try:
    while time.time() - start < duration:
        data = conn.recv(65536)
        if not data:
            break
        for i in range(0, len(data)):
            pass
        chunk = bytes((expect + i) % 251 for i in range(len(data)))
        corrupt += chunk != data
        expect += len(data); total += len(data)
        arrivals.append((round(time.time(), 4), total))
except socket.timeout:
    pass
print(json.dumps({"bytes": total, "arrivals": arrivals, "corrupt": corrupt, "peer": peer[0]}))
"""

SENDER = r"""
import socket, sys, time
src, dst, port, duration = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
sock = socket.socket(socket.AF_INET6); sock.bind((src, 0)); sock.connect((dst, port))
pattern = bytes(i % 251 for i in range(251 * 64))
sent, end = 0, time.time() + duration
while time.time() < end:
    piece = pattern[sent % 251:] [:8192]
    sock.sendall(piece); sent += len(piece)
    time.sleep(0.005)
sock.close()
"""

BULK_SINK = r"""
import socket, sys
srv = socket.socket(socket.AF_INET6); srv.bind((sys.argv[1], int(sys.argv[2]))); srv.listen(1); srv.settimeout(20)
conn, _ = srv.accept(); total = 0
while True:
    data = conn.recv(1 << 20)
    if not data: break
    total += len(data)
print(total)
"""

FUZZ = r"""
import json, random, sys
from scapy.all import Ether, IPv6, Raw, sendp
a_loc, b_loc, tag, gw_mac = sys.argv[1], sys.argv[2], int(sys.argv[3], 16), sys.argv[4]
rng = random.Random(7)
def shim(next_header, tag, hdr_len=0):
    return bytes([next_header, hdr_len]) + ((1 << 47) | tag).to_bytes(6, "big")
pkts = []
pkts += [IPv6(src=b_loc, dst=a_loc, nh=140) / Raw(shim(6, tag)[:n]) for n in range(0, 8)]          # truncated
pkts += [IPv6(src=b_loc, dst=a_loc, nh=140) / Raw(shim(6, tag, hdr_len=3) + bytes(40))]            # bad Hdr Ext Len
pkts += [IPv6(src=b_loc, dst=a_loc, nh=140, plen=1400) / Raw(shim(6, tag) + bytes(20))]            # plen past the end
pkts += [IPv6(src="2001:db8:b2:1::dead", dst=a_loc, nh=140) / Raw(shim(6, tag) + bytes(20) * 3)]  # right tag, unverified locator
pkts += [IPv6(src=b_loc, dst=a_loc, nh=140) / Raw(shim(6, rng.getrandbits(47)) + rng.randbytes(1400)) for _ in range(20)]  # oversized, unknown tags
pkts += [IPv6(src=b_loc, dst=a_loc, nh=140) / Raw(rng.randbytes(rng.randrange(1, 200))) for _ in range(200)]  # noise
pkts += [IPv6(src=b_loc, dst=a_loc, nh=140) / Raw(shim(140, tag) + shim(6, tag) + bytes(30))]     # nested shim headers
sendp([Ether(dst=gw_mac) / p for p in pkts], iface="eth2", verbose=0)  # straight to ISP 2's router
print(json.dumps({"sent": len(pkts)}))
"""


def script(net, node, code, *args, **kwargs):
    return net.popen(node, sys.executable, "-c", code, *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                     text=True, cwd=str(ROOT), **kwargs)


def nstat(net, node, counter):
    """A kernel SNMP counter of a namespace (absolute, since the namespace was created)."""
    for line in net.run(node, "nstat", "-az", counter).splitlines():
        if line.startswith(counter):
            return int(line.split()[1])
    return 0


def max_gap(arrivals, after):
    times = [t for t, _ in arrivals]
    gaps = [(b - a, a) for a, b in zip(times, times[1:]) if b >= after]
    return max(gaps) if gaps else (None, None)


@pytest.fixture(scope="module")
def run():
    from agents.shim.twohosts import TwoHosts, wait_for

    net = TwoHosts(f"mhshim{os.getpid() % 100000}")
    result = {}
    try:
        net.build()
        A1, A2 = net.ulids["hA"]
        B1, B2 = net.ulids["hB"]
        result["ulids"] = net.ulids
        net.start_daemons("ebpf", "tuned")
        receiver = script(net, "hB", RECEIVER, B1, "5001", "22")
        time.sleep(0.3)
        sender = script(net, "hA", SENDER, A1, B1, "5001", "15")
        net.ask("hA", cmd="connect", peer=B1)
        assert wait_for(lambda: [c for c in net.ask("hA", cmd="contexts") if c["state"] == "established"], 10)
        result["loop_start"] = net.ask("hA", cmd="status")["loop"]
        time.sleep(2.0)
        result["loop_before_cut"] = net.ask("hA", cmd="status")["loop"]
        result["before"] = net.ask("hA", cmd="contexts")
        result["cut_at"] = time.time()
        net.blackhole("r1")
        switched = wait_for(lambda: [e for e in net.ask("hA", cmd="events") if e["kind"] == "pair-switched"], 12)
        result["switch_after"] = time.time() - result["cut_at"] if switched else None
        assert wait_for(lambda: net.ask("hA", cmd="contexts")[0]["datapath"]["translated"], 5)
        result["loop_after_switch"] = net.ask("hA", cmd="status")["loop"]
        ctx = net.ask("hA", cmd="contexts")[0]
        gw_mac = Path("/sys/class/net/b2/address")  # read inside r2 below
        gw_mac = net.run("r2", "cat", str(gw_mac)).strip()
        fuzz = script(net, "hB", FUZZ, A2, B2, ctx["local_context_tag"], gw_mac)
        out, err = fuzz.communicate(timeout=30)
        result["fuzz"] = json.loads(out) if out else {"error": err[-2000:]}
        sink = script(net, "hB", BULK_SINK, B1, "5002")
        time.sleep(0.3)
        result["links_a"] = sorted(link["ifname"] for link in json.loads(net.run("hA", "ip", "-j", "link", "show")))
        result["route_a"] = json.loads(net.run("hA", "ip", "-6", "-j", "route", "get", B1, "from", A1))[0]
        # The stream's packets go on being translated meanwhile: the device's count is read before the
        # daemon's here and after it below, so that one sent between the two reads is never counted
        # as translated without having left by eth2.
        eth2_before = int(net.run("hA", "cat", "/sys/class/net/eth2/statistics/tx_packets"))
        before = (net.ask("hA", cmd="status")["datapath"], eth2_before)
        t0 = time.time()
        bulk = net.run("hA", sys.executable, "-c",
                       "import socket,sys; s=socket.socket(socket.AF_INET6); s.bind((sys.argv[1],0)); "
                       "s.settimeout(15); s.connect((sys.argv[2],5002)); s.sendall(bytes(30_000_000)); s.close()", A1, B1)
        result["bulk"] = {"bytes": int(sink.communicate(timeout=20)[0].strip() or 0), "seconds": time.time() - t0, "out": bulk}
        result["too_big"] = {r: nstat(net, r, "Icmp6OutPktTooBigs") for r in ("r1", "r2")}
        after = (net.ask("hA", cmd="status")["datapath"], int(net.run("hA", "cat", "/sys/class/net/eth2/statistics/tx_packets")))
        result["bulk_out"] = {"translated": after[0]["translated_out"] - before[0]["translated_out"],
                              "redirected": after[0]["out_redirected"] - before[0]["out_redirected"],
                              "eth2_tx": after[1] - before[1]}
        sender.wait(30)
        out, err = receiver.communicate(timeout=30)
        result["stream"] = json.loads(out) if out else {"error": err}
        result["contexts_a"] = net.ask("hA", cmd="contexts")
        result["contexts_b"] = net.ask("hB", cmd="contexts")
        result["status_a"] = net.ask("hA", cmd="status")
        result["status_b"] = net.ask("hB", cmd="status")
        result["alive"] = {h: p.poll() is None for h, p in net.daemons.items()}
        gap, at = max_gap(result["stream"].get("arrivals", []), result["cut_at"])
        result["gap"] = gap
        print(f"\nshim data path failover: switch {result['switch_after']:.2f} s after the cut, "
              f"largest stream gap {gap:.2f} s; bulk {result['bulk']['bytes'] / result['bulk']['seconds'] / 1e6 * 8:.0f} Mb/s; "
              f"too big to translate (dropped at hA) {result['status_a']['datapath'].get('out_too_big')}")
        yield result
    finally:
        net.close()
        result["logs_deleted"] = True


def test_flow_survives_the_isp_cut_on_the_same_connection(run):
    stream = run["stream"]
    after_cut = [b for t, b in stream["arrivals"] if t > run["cut_at"] + run["gap"]]
    assert run["switch_after"] is not None and run["switch_after"] < 3.0 + 3.0  # tuned Send Timeout 3 s
    assert after_cut and after_cut[-1] - after_cut[0] > 100_000, "no bytes after the cut"
    assert stream["corrupt"] == 0
    assert run["gap"] < 12.0


def test_translation_uses_the_new_pair_and_the_payload_header(run):
    A1, A2 = run["ulids"]["hA"]
    B1, B2 = run["ulids"]["hB"]
    (ca,) = run["contexts_a"]
    (cb,) = run["contexts_b"]
    assert ca["datapath"]["translated"] and ca["datapath"]["locators"] == [A2, B2]
    assert cb["datapath"]["translated"] and cb["datapath"]["locators"] == [B2, A2]
    assert ca["datapath"]["counters"]["translated_out"]["packets"] > 100
    assert cb["datapath"]["counters"]["restored_in"]["packets"] > 100
    # every translated packet arrives restored, but for the few that hA sends on the new pair before hB
    # has switched its own context (the two ends switch a round trip apart; on a loaded machine a few
    # round trips: 2 and 5 were seen): at most 8, or 2 % of what was translated, never a negative count
    sent = run["status_a"]["datapath"]["translated_out"]
    lost = sent - run["status_b"]["datapath"]["restored_in"]
    assert 0 <= lost <= max(8, sent // 50), (lost, sent)


def test_full_size_segments_pass_after_the_switch(run):
    assert run["bulk"]["bytes"] == 30_000_000
    assert run["bulk"]["seconds"] < 15
    # TCP's large segments carry the header through the ISP routers: none was refused as too big
    assert run["too_big"] == {"r1": 0, "r2": 0}


def test_translated_packets_leave_by_the_real_device_without_a_steering_veth(run):
    """The bulk transfer is rewritten at eth2's egress: the route sends it there directly."""
    assert run["links_a"] == ["eth1", "eth2", "lo"]  # the agent made no device of its own
    route = run["route_a"]
    metrics = {k: v for m in route.get("metrics", []) for k, v in m.items()}
    assert route["dev"] == "eth2" and metrics.get("mtu") == 1460, route  # 40 octets below eth2's 1500
    bulk = run["bulk_out"]
    assert bulk["translated"] > 100 and bulk["redirected"] == 0, bulk
    assert bulk["eth2_tx"] >= bulk["translated"], bulk  # every translated segment left by eth2


def test_the_daemon_sleeps_under_a_working_flow_and_the_kernel_tells_it_of_the_cut(run):
    start, before, after = run["loop_start"], run["loop_before_cut"], run["loop_after_switch"]
    tcp_reads = lambda loop: loop["ulp_lookups"] + loop["ulp_dumps"]  # noqa: E731
    # 2 s of a stream that works: polling TCP every 20 ms would be ~100 reads, and ~200 wake-ups.  A busy
    # machine can starve the receiver past the quiet threshold (10 ms heard nothing while sending): each
    # such spell is a real quiet signal, and reads TCP (a dump, then every 20 ms until the peer is heard,
    # a few polls), so the budget grows by a few reads and wake-ups per spell, and polling still fails it
    spells = before["quiet_spells"] - start["quiet_spells"]
    signals = before["quiet_signals"] - start["quiet_signals"]
    assert tcp_reads(before) - tcp_reads(start) <= 10 + 5 * spells, (start, before)
    assert before["wakeups"] - start["wakeups"] <= 40 + 5 * signals, (start, before)
    assert after["quiet_spells"] > before["quiet_spells"], (before, after)  # the cut: sending, nothing heard
    assert tcp_reads(after) > tcp_reads(before)


def test_malformed_and_forged_shim_packets_are_harmless(run):
    assert run["fuzz"].get("sent", 0) > 200
    assert all(run["alive"].values())
    stats = run["status_a"]["datapath"]
    assert stats["malformed_in"] >= 3 and stats["unknown_in"] >= 1
    # nothing forged was restored into hA's context: hB's daemon counts what it translated
    assert stats["restored_in"] == run["status_b"]["datapath"]["translated_out"]
    assert run["stream"]["corrupt"] == 0
