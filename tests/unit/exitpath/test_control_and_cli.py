"""The agent's control protocol, its CLI's parsing and output, and the documented argv."""

import ipaddress
import json
import random

import pytest

from agents.exitpath import cli, control, daemon
from agents.exitpath.engine import ExitPathCache, Timing
from agents.exitpath.launch import daemon_argv

A, B = "2001:db8:a001:1::10", "2001:db8:b001:1::10"
NE = "2001:db8:f000::10"


class FakeKernel:
    devices = ("lan",)

    def stats(self):
        return {"races": 1, "copies": 1}

    def flows(self):
        return []


@pytest.fixture
def engine():
    e = ExitPathCache((ipaddress.IPv6Address(A), ipaddress.IPv6Address(B)), Timing(), random.Random(0))
    e.race_started(1.0, ipaddress.IPv6Address(NE), ipaddress.IPv6Address(A))
    e.received(1.01, ipaddress.IPv6Address(NE), ipaddress.IPv6Address(B))
    return e


def ask(engine, request):
    line, stop = control.answer(engine, 2.0, json.dumps(request).encode(), FakeKernel())
    return json.loads(line), stop


def test_cache_status_events_lookup(engine):
    answer, _ = ask(engine, {"cmd": "cache"})
    assert answer["ok"] and answer["result"][0]["src"] == B
    status = ask(engine, {"cmd": "status"})[0]["result"]
    assert status["kernel"] == {"devices": ["lan"], "races": 1, "copies": 1} and status["entries"] == 1
    assert [e["kind"] for e in ask(engine, {"cmd": "events", "since": 1.005})[0]["result"]] == ["won"]
    assert ask(engine, {"cmd": "lookup", "dst": NE})[0]["result"] == {"dst": NE, "src": B}
    assert ask(engine, {"cmd": "lookup", "dst": "2001:db8::1"})[0]["result"]["src"] is None
    assert ask(engine, {"cmd": "flows"})[0]["result"] == []
    assert ask(engine, {"cmd": "shutdown"}) == ({"ok": True, "result": {"stopping": True}}, True)


@pytest.mark.parametrize("line", [b"not json", b"[1]", b'{"cmd": "nope"}', b'{"cmd": "lookup", "dst": "x"}',
                                  b'{"cmd": "events", "since": "soon"}'])
def test_bad_requests_answer_an_error_and_never_raise(engine, line):
    out, stop = control.answer(engine, 2.0, line)
    assert json.loads(out)["ok"] is False and not stop


def test_cli_tables():
    rows = [{"dst": NE, "src": B, "how": "reply", "age": 1.0, "expires_in": 59.0, "locked": False}]
    text = cli.show("cache", rows, False)
    assert text.splitlines()[0].split() == ["DST", "SRC", "HOW", "AGE", "EXPIRES_IN", "LOCKED"] and B in text
    assert cli.show("events", [], False) == "(none)"
    assert json.loads(cli.show("cache", rows, True)) == rows


def test_cli_help_teaches(capsys):
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["--help"])
    assert "exitpathctl cache" in capsys.readouterr().out


def test_documented_argv_parses():
    argv = daemon_argv("/tmp/x.sock", [A, B], ["lan"], Timing(30, 0.5, 1.0), seed=3, route_hints=False)
    assert argv[:3] == ["python3", "-m", "agents.exitpath.daemon"]
    args = daemon.parser().parse_args(argv[3:])
    assert args.sources == [A, B] and args.devices == ["lan"] and args.lifetime == 30 and args.lock == 0.5
    assert args.probe_timeout == 1.0 and args.seed == 3 and args.route_hints is False


def test_daemon_refuses_bad_input_with_exit_2(capsys):
    assert daemon.main(["--source", A, "--source", A]) == 2
    assert "repeat" in capsys.readouterr().err
    assert daemon.main(["--source", A, "--source", B, "--lock", "100"]) == 2
