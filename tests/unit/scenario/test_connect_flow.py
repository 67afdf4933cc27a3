"""The ``connect`` flow kind: names resolved through the lab's DNS, sources the kernel picks.

Resolved against real lab files (their plans, nothing built), so a name outside the lab's zone, a name of
another node or a lab without the dns add-on is refused at validate time with file:line; then the agents'
command lines, the log parser, and the real agent over loopback.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testbed.errors import ScenarioError
from testbed.scenario.flows import trace_from_events
from testbed.scenario.load import load_scenario
from testbed.scenario.model import ConnectFlow
from testbed.scenario.run import dry_run

ROOT = Path(__file__).resolve().parents[3]
DNS_LAB = ROOT / "topologies" / "dns-two-isp.yaml"
PLAIN_LAB = ROOT / "topologies" / "two-isp-site.yaml"


def scenario(tmp_path: Path, flow: str, lab: Path = DNS_LAB) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(f"lab: {lab}\nduration: 5\ntraffic:\n  - {flow}\n")
    return path


def planned(tmp_path: Path, flow: str, lab: Path = DNS_LAB):
    return dry_run(load_scenario(scenario(tmp_path, flow, lab))).flows[0]


def problems(tmp_path: Path, flow: str, lab: Path = DNS_LAB) -> str:
    with pytest.raises(ScenarioError) as err:
        dry_run(load_scenario(scenario(tmp_path, flow, lab)))
    return str(err.value)


def test_by_name_from_the_kernels_source(tmp_path):
    plan = planned(tmp_path, "{kind: connect, from: c1, to: h1, to_name: H1.lab.example., client: happy}")
    argv = list(plan.client.argv)
    assert argv[argv.index("--name") + 1] == "h1.lab.example"
    assert argv[argv.index("--client") + 1] == "happy"
    assert "--src" not in argv and "--dst" not in argv, "src: auto is the default: the socket is never bound"
    assert (plan.src, plan.dst) == ("auto", "h1.lab.example")
    server = list(plan.server.argv)
    assert server[server.index("--bind") + 1] == "::", "a name may lead to any address of `to`"


def test_an_address_and_a_bound_source(tmp_path):
    plan = planned(tmp_path, "{kind: connect, from: h1, to: srv, src: {isp: ispb}, interval_ms: 100}", PLAIN_LAB)
    argv = list(plan.client.argv)
    assert argv[argv.index("--src") + 1] == "2001:db8:b001:1::10"
    assert argv[argv.index("--dst") + 1] == "2001:db8:f000::10"
    assert argv[argv.index("--interval-ms") + 1] == "100" and "--name" not in argv
    auto = list(planned(tmp_path, "{kind: connect, from: h1, to: srv, src: auto}", PLAIN_LAB).client.argv)
    assert "--src" not in auto


def test_a_lab_without_the_dns_addon_has_no_names(tmp_path):
    msg = problems(tmp_path, "{kind: connect, from: h1, to: srv, to_name: srv.lab.example}", PLAIN_LAB)
    assert "s.yaml:4: traffic.0: flow f1: to_name 'srv.lab.example': the lab publishes no names" in msg
    assert "addons: [dns]" in msg


def test_a_name_outside_the_zone_or_of_another_node_is_refused(tmp_path):
    msg = problems(tmp_path, "{kind: connect, from: c1, to: h1, to_name: h1.example.org}")
    assert "is not in the lab's zone (lab.example); h1's name is h1.lab.example" in msg
    msg = problems(tmp_path, "{kind: connect, from: c1, to: h2, to_name: h1.lab.example}")
    assert "names h1, but the server runs on `to` (h2): use h2.lab.example, or to: h1" in msg
    one_isp = planned(tmp_path, "{kind: connect, from: c1, to: h1, to_name: h1.ispb.lab.example}")
    assert one_isp.dst == "h1.ispb.lab.example", "the per-ISP names of the zone name `to` too"


@pytest.mark.parametrize("flow, message", [
    ("{kind: connect, from: c1, to: h1, to_name: h1.lab.example, dst: '2001:db8::1'}", "not both"),
    ("{kind: connect, from: c1, to: h1, client: dnsorder}", "dnsorder reads the DNS answer itself"),
    ("{kind: connect, from: c1, to: h1, src: automatic}", "'automatic' is not an IP address"),
    ("{kind: connect, from: c1, to: h1, client: firefox}", "client"),
])
def test_bad_fields_are_refused_with_their_line(tmp_path, flow, message):
    msg = problems(tmp_path, flow)
    assert "s.yaml:4" in msg and message in msg


def test_the_model_defaults():
    flow = ConnectFlow.model_validate({"kind": "connect", "from": "a", "to": "b"})
    assert (flow.src, flow.client, flow.interval_ms, flow.to_name) == ("auto", "sequential", 250.0, None)
    assert flow.gap_threshold_s == pytest.approx(0.75)


def test_the_log_becomes_attempts_and_deliveries():
    client = [
        {"t": 10.0, "ev": "start"},
        {"t": 10.30, "ev": "connect", "n": 2, "started": 10.25, "ok": False, "error": "timeout", "connect_ms": None},
        {"t": 10.02, "ev": "connect", "n": 1, "started": 10.0, "ok": True, "connect_ms": 1.5, "local": "2001:db8:b::10",
         "remote": "2001:db8:f::10"},
    ]
    trace = trace_from_events("f1", "connect", client, [])
    assert [(a.t, a.ok, a.latency_ms) for a in trace.attempts] == [(10.0, True, 1.5), (10.25, False, None)]
    assert [(d.t, d.seq) for d in trace.deliveries] == [(10.02, 1)]
    assert trace.errors == ((10.30, "timeout"),)


@pytest.mark.skipif(not shutil.which("curl"), reason="needs curl")
@pytest.mark.parametrize("client", ["sequential", "happy", "curl"])
def test_the_agent_over_loopback(tmp_path, client):
    """The real agent against the real server on ::1, unbound: every attempt answered, the source recorded."""
    env = {"PYTHONPATH": str(ROOT)}
    server = subprocess.Popen([sys.executable, "-m", "agents.traffic.probe", "serve", "--bind", "::", "--port", "0",
                               "--log", str(tmp_path / "srv.jsonl"), "--duration", "20"], env=env)
    try:
        deadline = time.monotonic() + 10
        while not (tmp_path / "srv.jsonl").exists() or "listen" not in (tmp_path / "srv.jsonl").read_text():
            assert time.monotonic() < deadline, "server never listened"
            time.sleep(0.05)
        port = next(json.loads(l)["port"] for l in (tmp_path / "srv.jsonl").read_text().splitlines() if '"listen"' in l)
        out = subprocess.run([sys.executable, "-m", "agents.traffic.byname", "connect", "--client", client, "--dst",
                              "::1", "--port", str(port), "--count", "3", "--interval-ms", "50"],
                             env=env, capture_output=True, text=True, timeout=30, check=True).stdout
    finally:
        server.terminate()
        server.wait()
    tries = [e for e in map(json.loads, out.splitlines()) if e["ev"] == "connect"]
    assert [t["ok"] for t in tries] == [True, True, True], tries
    assert {t["local"] for t in tries} == {"::1"} and {t["remote"] for t in tries} == {"::1"}
    assert all(t["connect_ms"] is not None and t["connect_ms"] > 0 for t in tries)


def test_the_agent_refuses_dnsorder_without_a_name():
    res = subprocess.run([sys.executable, "-m", "agents.traffic.byname", "connect", "--client", "dnsorder", "--dst",
                          "::1"], env={"PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=30)
    assert res.returncode == 2 and "give --name" in res.stderr
