"""Agent command lines built from flows, and agent log events parsed back into traces."""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed.errors import LabError
from testbed.scenario.flows import plan_flows, read_events, resolve_address, trace_from_events
from testbed.scenario.load import parse_scenario
from testbed.scenario.model import IspAddress
from testbed.yamlmarks import MarkedDoc

ADDRS = {
    "h1": {"ispa": ["2001:db8:a:1::10"], "ispb": ["2001:db8:b:1::10"]},
    "srv": {"core": ["2001:db8:ff::80"]},
}


def test_resolve_address_forms():
    h1 = ADDRS["h1"]
    assert resolve_address(None, "h1", h1) == "2001:db8:a:1::10"
    assert resolve_address(IspAddress(isp="ispb"), "h1", h1) == "2001:db8:b:1::10"
    assert resolve_address("2001:db8::1", "h1", h1) == "2001:db8::1"
    with pytest.raises(LabError, match="no address #1 from ISP ispb"):
        resolve_address(IspAddress(isp="ispb", index=1), "h1", h1)
    with pytest.raises(LabError, match="no addresses"):
        resolve_address(None, "h9", {})


def test_plan_flows_builds_argv_with_chosen_addresses(tmp_path):
    data = {"lab": "x", "duration": 8, "traffic": [
        {"name": "t1", "kind": "tcpseq", "from": "h1", "to": "srv", "src": {"isp": "ispb"}, "reconnect": True,
         "user_timeout_ms": 1500},
        {"name": "p1", "kind": "probe", "from": "h1", "to": "srv", "interval_ms": 250, "start": 2, "stop": 6},
        {"name": "i1", "kind": "ping", "from": "srv", "to": "h1", "dst": {"isp": "ispa"}},
    ]}
    s = parse_scenario(MarkedDoc(data, "x.yaml"), Path(".")).scenario
    t1, p1, i1 = plan_flows(s, ADDRS.__getitem__, tmp_path, python="/usr/bin/python3", base_port=7000)
    assert (t1.src, t1.dst) == ("2001:db8:b:1::10", "2001:db8:ff::80")
    client = list(t1.client.argv)
    assert client[:4] == ["env", client[1], "/usr/bin/python3", "-m"] and client[1].startswith("PYTHONPATH=")
    assert client[4:6] == ["agents.traffic.tcpseq", "send"]
    for opt, value in (("--src", "2001:db8:b:1::10"), ("--dst", "2001:db8:ff::80"), ("--port", "7000"),
                       ("--user-timeout-ms", "1500"), ("--duration", "8"), ("--log", str(tmp_path / "t1.client.jsonl"))):
        assert client[client.index(opt) + 1] == value
    assert "--reconnect" in client and t1.client.node == "h1"
    assert t1.server is not None and t1.server.node == "srv"
    assert t1.server.argv[t1.server.argv.index("--bind") + 1] == "2001:db8:ff::80"
    assert "http://[2001:db8:ff::80]:7001/" in p1.client.argv and p1.start == 2
    assert p1.client.argv[p1.client.argv.index("--duration") + 1] == "4"
    assert i1.server is None and i1.dst == "2001:db8:a:1::10"


def test_read_events_skips_a_torn_last_line(tmp_path):
    log = tmp_path / "x.jsonl"
    log.write_text('{"t": 1.0, "ev": "start"}\n{"t": 2.0, "ev": "rec", "seq"')
    assert read_events(log) == [{"t": 1.0, "ev": "start"}]
    assert read_events(tmp_path / "missing.jsonl") == []


def test_tcpseq_events_become_connections_attempts_and_deliveries():
    client = [
        {"t": 10.0, "ev": "start"},
        {"t": 10.01, "ev": "connect", "conn": 1, "started": 10.0, "connect_ms": 0.5},
        {"t": 10.01, "ev": "mark", "seq": 0, "conn": 1},
        {"t": 11.0, "ev": "broken", "conn": 1, "error": "ECONNRESET", "errno": 104},
        {"t": 11.1, "ev": "connect_error", "conn": 2, "started": 11.1, "error": "ECONNREFUSED"},
        {"t": 11.5, "ev": "connect", "conn": 3, "started": 11.5, "connect_ms": 0.4},
        {"t": 12.0, "ev": "close", "conn": 3, "unsent": 0},
        {"t": 12.0, "ev": "stop", "sent": 150},
    ]
    server = [{"t": 10.02 + i / 100, "ev": "rec", "conn": 1, "seq": i, "ts": 10.01 + i / 100} for i in range(100)]
    trace = trace_from_events("t1", "tcpseq", client, server)
    assert trace.started == 10.0 and trace.seqs_sent == (0, 150) and len(trace.deliveries) == 100
    assert [(a.ok, a.error) for a in trace.attempts] == [(True, None), (False, "ECONNREFUSED"), (True, None)]
    assert [(c.conn, c.closed, c.broken) for c in trace.connections] == [(1, 11.0, "ECONNRESET"), (3, 12.0, None)]


def test_ping_events_give_send_times_from_rtt_and_range_from_summary():
    client = [{"t": 5.0, "ev": "start"}, {"t": 5.0, "ev": "exec", "argv": []},
              {"t": 5.1, "ev": "reply", "seq": 1, "rtt_ms": 100.0, "dup": False},
              {"t": 5.6, "ev": "timeout", "seq": 2},
              {"t": 5.7, "ev": "icmp_error", "seq": 3, "error": "Destination unreachable: Address unreachable"},
              {"t": 6.0, "ev": "stop", "transmitted": 4, "received": 1, "interval_ms": 500}]
    trace = trace_from_events("i1", "ping", client, [])
    assert trace.seqs_sent == (1, 5)
    assert trace.deliveries[0].sent == pytest.approx(5.0) and trace.deliveries[0].rtt_ms == 100.0
    assert trace.errors == ((5.7, "Destination unreachable: Address unreachable"),)


def test_probe_events_are_attempts_and_successes_are_deliveries():
    client = [{"t": 1.0, "ev": "start"},
              {"t": 1.2, "ev": "probe", "n": 1, "started": 1.1, "ok": True, "connect_ms": 0.3, "error": None},
              {"t": 2.2, "ev": "probe", "n": 2, "started": 1.2, "ok": False, "connect_ms": None,
               "error": "Connection timed out after 1000 milliseconds"}]
    trace = trace_from_events("p1", "probe", client, [])
    assert [(a.t, a.ok) for a in trace.attempts] == [(1.1, True), (1.2, False)]
    assert [d.t for d in trace.deliveries] == [1.2]
    assert trace.errors[0][1].startswith("Connection timed out")
