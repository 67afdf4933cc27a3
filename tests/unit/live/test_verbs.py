"""The live verbs are on the mhlab command, teach in --help, and point at handlers that exist."""

import importlib

import pytest

from testbed.cli import build_parser, main


@pytest.mark.parametrize("argv, handler", [
    (["fault", "lx", "loss", "ispa-ra", "30%", "--for", "5"], "testbed.live.faultcmd:cmd_fault"),
    (["faults", "lx", "--json"], "testbed.live.faultcmd:cmd_faults"),
    (["restore", "lx", "--all"], "testbed.live.faultcmd:cmd_restore"),
    (["capture", "lx", "ra-ispa", "-w", "x.pcap", "--filter", "icmp6"], "testbed.live.capture:cmd_capture"),
    (["graph", "topologies/two-isp-site.yaml", "-o", "x.svg"], "testbed.live.graphcmd:cmd_graph"),
    (["watch", "lx", "--once"], "testbed.live.watch:cmd_watch"),
    (["serve", "lx", "--port", "0"], "testbed.live.web:cmd_serve"),
])
def test_each_verb_parses_and_its_handler_exists(argv, handler):
    args = build_parser().parse_args(argv)
    assert args.fn.__qualname__ == handler
    module, _, name = handler.partition(":")
    assert callable(getattr(importlib.import_module(module), name))


def test_fault_parses_words_and_options():
    args = build_parser().parse_args(["fault", "lx", "rate-limit", "ispa-ra", "1mbit", "burst=80kb", "--for", "3"])
    assert (args.kind, args.words, args.for_) == ("rate-limit", ["ispa-ra", "1mbit", "burst=80kb"], 3.0)
    assert build_parser().parse_args(["capture", "lx", "ispa-ra", "-w", "x", "--filter", "icmp6 and host x"]).filter \
        == "icmp6 and host x"


def test_help_lists_every_kind(capsys):
    with pytest.raises(SystemExit):
        main(["fault", "--help"])
    out = capsys.readouterr().out
    for line in ("loss LINK PERCENT", "flap LINK PERIOD_MS [DOWN_MS]", "daemon-kill NODE [DAEMON]", "--for SECONDS"):
        assert line in out


def test_graph_of_a_file_needs_no_lab(tmp_path, capsys):
    out = tmp_path / "plan.svg"
    assert main(["graph", "topologies/two-sites-shim.yaml", "-o", str(out)]) == 0
    assert "ISP ispa1" in out.read_text() and "2001:db8:a101::/48" in out.read_text()
    assert main(["graph", "topologies/two-sites-shim.yaml", "-o", str(tmp_path / "plan.bmpx")]) == 2
