"""The control-socket protocol (without sockets), the daemon's config, and offline shimctl."""

import json

import pytest

from agents.shim import cli, control
from agents.shim.config import DaemonConfig

from .lab import Wire, make_engine


def ask(engine, now, **request):
    line, actions, stop = control.answer(engine, now, json.dumps(request).encode())
    return json.loads(line), actions, stop


def test_connect_then_views_report_the_context_and_its_pairs():
    a, b = make_engine("a", 1), make_engine("b", 2)
    wire = Wire(a, b)
    reply, actions, _ = ask(a, 0.0, cmd="connect", peer=str(b.identity.ulids[0]))
    assert reply == {"ok": True, "result": {"started": True}}
    wire.deliver(actions)
    contexts = ask(a, 0.1, cmd="contexts")[0]["result"]
    assert contexts[0]["state"] == "established" and contexts[0]["peer_ulid"] == str(b.identity.ulids[0])
    pairs = ask(a, 0.1, cmd="pairs")[0]["result"]
    assert len(pairs) == 4 and [p["state"] for p in pairs if p["preferred"]] == ["reachable"]
    kinds = [e["kind"] for e in ask(a, 0.1, cmd="events")[0]["result"]]
    assert kinds == ["i1-sent", "context-established"]
    assert ask(a, 0.1, cmd="events", since=0.0)[0]["result"] == []
    status = ask(a, 0.1, cmd="status")[0]["result"]
    assert status["contexts"] == 1 and status["counters"]["received"] == 2


def test_signals_and_locator_updates_go_through_the_socket():
    a, b = make_engine("a", 1), make_engine("b", 2)
    wire = Wire(a, b)
    wire.deliver(a.connect(0.0, b.identity.ulids[0]))
    _, actions, _ = ask(a, 1.0, cmd="signal", kind="prefix-deprecated", prefix="2001:db8:a2:1::/64")
    assert any(p["pinned"] == ["prefix-deprecated"] for p in a.pairs_view())
    _, actions, _ = ask(a, 2.0, cmd="locators", locators=[str(a.identity.ulids[0])])
    assert [type(x.message).__name__ for x in actions if hasattr(x, "message")] == ["UpdateRequest"]


@pytest.mark.parametrize("line", [b"not json", b"[1]", b'{"cmd": "dance"}', b'{"cmd": "connect"}',
                                  b'{"cmd": "connect", "peer": "nope"}', b'{"cmd": "signal", "kind": "x"}'])
def test_bad_requests_are_answered_not_raised(line):
    reply, actions, stop = control.answer(make_engine("a", 1), 0.0, line)
    assert json.loads(reply)["ok"] is False and actions == [] and stop is False


def test_shutdown_request_stops():
    assert control.answer(make_engine("a", 1), 0.0, b'{"cmd": "shutdown"}')[2] is True


def test_config_file_and_flags_merge(tmp_path):
    path = tmp_path / "shim.json"
    path.write_text(json.dumps({"prefixes": ["2001:db8:a1:1::/64"], "profile": "tuned", "timers": {"send_timeout": 1.5},
                                "policy": "packets:10", "modifier": "00" * 16, "pseudo_key": "11" * 48}))
    config = DaemonConfig.from_sources(str(path), {"socket": "/tmp/x.sock", "prefixes": None})
    assert config.timer_profile().send_timeout == 1.5 and config.timer_profile().name == "tuned"
    assert str(config.context_policy()) == "packets:10" and config.socket == "/tmp/x.sock"
    assert config.identity().ulids == DaemonConfig.from_sources(str(path), {}).identity().ulids  # reproducible
    path.write_text(json.dumps({"prefixes": ["2001:db8::/64"], "bogus": 1}))
    with pytest.raises(ValueError, match="bogus"):
        DaemonConfig.from_sources(str(path), {})


def test_shimctl_hba_generate_then_verify(capsys):
    args = ["hba", "generate", "--prefix", "2001:db8:a1:1::/64", "--prefix", "2001:db8:a2:1::/64", "--sec", "1",
            "--modifier", "00" * 16, "--pseudo-key", "ab" * 48, "--json"]
    with pytest.raises(SystemExit) as code:
        cli.main(args)
    assert code.value.code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["sec"] == 1 and len(out["addresses"]) == 2 and out["hybrid"] is False
    member = out["addresses"][1]
    with pytest.raises(SystemExit) as code:
        cli.main(["hba", "verify", member["address"], "--params", out["addresses"][0]["params"]])
    assert code.value.code == 0 and "member" in capsys.readouterr().out
    with pytest.raises(SystemExit) as code:
        cli.main(["hba", "verify", "2001:db8:a3:1::1", "--params", member["params"]])
    assert code.value.code == 1 and "not-in-set" in capsys.readouterr().out


def test_shimctl_without_daemon_fails_cleanly(capsys, tmp_path):
    with pytest.raises(SystemExit) as code:
        cli.main(["--socket", str(tmp_path / "none.sock"), "pairs"])
    assert code.value.code == 1 and "shimctl:" in capsys.readouterr().err


def test_help_texts_teach_with_examples(capsys):
    for argv in (["--help"], ["hba", "generate", "--help"]):
        with pytest.raises(SystemExit):
            cli.main(argv)
        assert "examples:" in capsys.readouterr().out
