"""A link flapping under tcpseq, probe and ping flows: loss only inside each flap's window, nothing restarted,
no exception in any log, every process's memory sampled (benchmarks/soak_flap.py)."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import soak_flap  # noqa: E402

pytestmark = pytest.mark.lab


def _run(tmp_path, capsys, *args):
    rc = soak_flap.main([*args, "-o", str(tmp_path)])
    out = capsys.readouterr().out
    return rc, json.loads((tmp_path / "soak-flap.json").read_text())["labs"], out


def test_the_default_lab_recovers_from_every_flap(tmp_path, capsys):
    """Half a minute, 2 flaps (about 55 s with the deploy): a flap that broke the lab for good - a route
    lost with the interface - shows as a gap that never closes."""
    rc, (res,), out = _run(tmp_path, capsys, "--labs", "default", "--minutes", "0.5", "--sample-s", "5",
                           "--period-s", "8", "--down-s", "2", "--no-trend", "--prefix", "rbft")
    assert rc == 0, out
    assert len(res["flaps"]) == 2 and not res["excess"] and not res["log_problems"], out
    cut = {f["name"]: f for f in res["flows"]}
    assert cut["echo_a"]["gaps"] >= len(res["flaps"]) and cut["echo_b"]["gaps"] == 0, "the flap cuts only ISP A"
    assert {"ra/zebra", "ra/bgpd"} <= set(res["series"]) and "ra/staticd" not in res["series"]
    # ra's session to ispa went down with each flap and came back (read from ra's bgpd log)
    downs = [o for o in res["bgp_outages"] if (o["router"], o["peer"]) == ("ra", "ispa")]
    assert len(downs) >= len(res["flaps"]) and all(o["up"] is not None for o in downs), res["bgp_outages"]
    assert (tmp_path / "soak-flap-default.png").stat().st_size > 10_000


@pytest.mark.slow
def test_five_minutes_of_flaps_in_both_labs(tmp_path, capsys):
    """Five minutes per lab, RSS every 7 s, trend judged (about 12 minutes).  bgpd's RSS steps by ~1.3 MB
    as its session goes down and later up again, so a trend over five minutes needs many samples: with ten
    (every 30 s) the fitted slope was the luck of where they fell; 7 s, not 10, so the samples do not ride the
    10-s flap cycle."""
    rc, results, out = _run(tmp_path, capsys, "--minutes", "5", "--sample-s", "7", "--prefix", "rbfs")
    assert rc == 0, out
    assert [r["lab"] for r in results] == ["default", "shim"] and all(r["passed"] for r in results)
