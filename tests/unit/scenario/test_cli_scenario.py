"""The scenario faces of the CLI: validate says which kind of file, run refuses lab files (and deploy
scenarios) naming the right verb, --dry-run resolves without building, --pcap repeats."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from testbed.cli import build_parser, main
from testbed.scenario.run import pcap_links

ROOT = Path(__file__).resolve().parents[3]
SCEN = ROOT / "scenarios" / "baseline-upstream-cut.yaml"
LAB = ROOT / "topologies" / "two-isp-site.yaml"


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(argv))
    return rc, out.getvalue(), err.getvalue()


def test_validate_says_which_kind_of_file():
    rc, out, _ = cli("validate", str(SCEN))
    assert rc == 0 and "ok - scenario 'baseline-upstream-cut': 4 flows, 1 fault, 4 expectations" in out
    assert "resolved against lab 'twoisp'" in out
    rc, out, _ = cli("validate", str(LAB))
    assert rc == 0 and "ok - lab file, lab 'twoisp'" in out


def test_the_wrong_verb_is_named():
    rc, _, err = cli("run", str(LAB))
    assert rc == 2 and "is a lab file, not a scenario: bring it up with `mhlab deploy" in err
    rc, _, err = cli("deploy", str(SCEN))
    assert rc == 2 and f"is a scenario file, not a lab file: run it with `mhlab run {SCEN}`" in err


def test_dry_run_resolves_against_the_lab_file_and_builds_nothing(tmp_path):
    rc, out, err = cli("--run-root", str(tmp_path / "runs"), "run", "--dry-run", str(SCEN), "-o", str(tmp_path / "r"))
    assert rc == 0, err
    assert "lab twoisp (multihoming)" in out and "upcut" in out and "ISP ispa loses its upstream (core)" in out
    assert "est_a        tcpseq  h1 2001:db8:" in out and "new_from_a new_connections_ok <= 0.05 after upcut+0.5" in out
    assert not (tmp_path / "r").exists() and not (tmp_path / "runs").exists()


def test_a_scenario_error_says_scenario(tmp_path):
    bad = tmp_path / "s.yaml"
    bad.write_text(f"lab: {LAB}\nduration: 5\ntraffic:\n  - {{kind: ping, from: h1, to: srv, intervall_ms: 5}}\n")
    rc, _, err = cli("run", "--dry-run", str(bad))
    assert rc == 2 and err.startswith("error: invalid scenario\n")
    assert f"{bad}:4: traffic.0.intervall_ms: unknown field 'intervall_ms'; did you mean 'interval_ms'?" in err


def test_every_pcap_is_kept():
    args = build_parser().parse_args(["run", str(SCEN), "--pcap", "ispa-ra", "--pcap", "core,ispa;ispb-rb"])
    assert pcap_links(args.pcap) == ["ispa-ra", "core,ispa", "ispb-rb"]
    assert pcap_links(["a;a", "a"]) == ["a"]


def test_lab_and_name_together_are_refused(tmp_path):
    rc, _, err = cli("run", str(SCEN), "--lab", "twoisp", "--name", "other", "-o", str(tmp_path / "r"))
    assert rc == 2 and "give one of them" in err
