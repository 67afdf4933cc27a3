"""Traffic agents' pure parts (wire records, ping output parsing, curl result) and their command lines."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

import pytest

from agents.traffic import ping, probe, tcpseq, udpcbr


def test_tcpseq_records_survive_arbitrary_stream_splits():
    stream = b"".join(tcpseq.encode_record(3, seq, 100.0 + seq, 64) for seq in range(50))
    buf, got = bytearray(), []
    for i in range(0, len(stream), 37):  # chunks that cut records anywhere
        buf += stream[i:i + 37]
        got += tcpseq.decode_records(buf)
    assert [(c, s) for c, s, _ in got] == [(3, s) for s in range(50)] and not buf
    assert got[7][2] == 107.0


def test_tcpseq_rejects_a_stream_that_is_not_records():
    with pytest.raises(ValueError, match="out of sync"):
        tcpseq.decode_records(bytearray(b"GET / HTTP/1.1\r\nHost: example\r\n\r\n"))


def test_udpcbr_packets_round_trip_and_foreign_datagrams_are_ignored():
    assert udpcbr.decode_packet(udpcbr.encode_packet(9, 1.5, 200)) == (9, 1.5)
    assert len(udpcbr.encode_packet(9, 1.5, 200)) == 200
    assert udpcbr.decode_packet(b"hello world, not ours at all") is None


PING_OUTPUT = """\
PING 2001:db8::1(2001:db8::1) from 2001:db8:a::10 : 56 data bytes
[1700000000.100000] 64 bytes from 2001:db8::1: icmp_seq=1 ttl=62 time=0.321 ms
[1700000000.300000] no answer yet for icmp_seq=2
[1700000000.400000] From 2001:db8:a::1 icmp_seq=3 Destination unreachable: Source address failed ingress/egress policy
[1700000000.500000] 64 bytes from 2001:db8::1: icmp_seq=4 ttl=62 time=0.400 ms (DUP!)
--- 2001:db8::1 ping statistics ---
4 packets transmitted, 1 received, +1 duplicates, +1 errors, 75% packet loss, time 301ms
"""


def test_ping_output_becomes_events():
    unwrap = ping.SeqUnwrapper()
    events = [e for e in (ping.parse_line(line, unwrap) for line in PING_OUTPUT.splitlines()) if e]
    assert [e["ev"] for e in events] == ["reply", "timeout", "icmp_error", "reply", "summary"]
    reply, timeout, error, dup, summary = events
    assert (reply["seq"], reply["rtt_ms"], reply["t"], reply["dup"]) == (1, 0.321, 1700000000.1, False)
    assert timeout["seq"] == 2
    assert error["error"] == "Destination unreachable: Source address failed ingress/egress policy"
    assert error["src"] == "2001:db8:a::1" and dup["dup"] is True
    assert (summary["transmitted"], summary["received"]) == (4, 1)


def test_ping_sequence_numbers_keep_increasing_across_the_16_bit_wrap():
    unwrap = ping.SeqUnwrapper()
    assert [unwrap(s) for s in (65534, 65535, 0, 1)] == [65534, 65535, 65536, 65537]


def test_ping_and_curl_command_lines_choose_the_source():
    args = argparse.Namespace(dst="2001:db8::1", src="2001:db8:b::10", interval_ms=20.0, timeout_ms=1000.0)
    assert ping.ping_argv(args) == ["ping", "-6", "-n", "-D", "-O", "-i", "0.020", "-W", "1",
                                    "-I", "2001:db8:b::10", "2001:db8::1"]
    args = argparse.Namespace(url="http://[2001:db8::1]:80/", src="2001:db8:b::10", connect_timeout_ms=1500.0,
                              max_time_ms=2000.0)
    argv = probe.curl_argv(args)
    assert argv[argv.index("--interface") + 1] == "2001:db8:b::10" and "--globoff" in argv
    assert argv[argv.index("--connect-timeout") + 1] == "1.5" and argv[-1] == "http://[2001:db8::1]:80/"


def test_curl_json_summary_becomes_a_probe_result():
    class Done:
        returncode = 28

    running = probe.RunningProbe(4, 10.0, Done())  # type: ignore[arg-type]
    out = '{"http_code":0,"time_connect":0,"time_total":1.001,"errormsg":"Connection timed out after 1001 ms"}'
    result = probe.probe_result(running, out, "")
    assert result["ok"] is False and result["exit"] == 28 and result["connect_ms"] is None
    assert result["error"] == "Connection timed out after 1001 ms" and result["total_ms"] == 1001.0


@pytest.mark.parametrize("module", ["tcpseq", "udpcbr", "probe", "ping"])
def test_every_agent_has_help(module):
    done = subprocess.run([sys.executable, "-m", f"agents.traffic.{module}", "--help"], capture_output=True,
                          text=True, timeout=10)
    assert done.returncode == 0 and f"agents.traffic.{module}" in done.stdout


@pytest.mark.parametrize("module", ["tcpseq", "udpcbr", "probe", "ping"])
def test_agent_durations_inside_a_flow_say_ms(module):
    """One vocabulary: every time option but --duration (the whole run, seconds) is in ms and says so."""
    p = importlib.import_module(f"agents.traffic.{module}").parser()
    roles = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction)).choices.values()
    options = {o for role in roles for a in role._actions for o in a.option_strings}
    timing = {o for o in options if any(w in o for w in ("interval", "timeout", "time", "retry", "every"))}
    assert timing and all(o.endswith("-ms") for o in timing), timing
