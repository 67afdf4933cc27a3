"""The deprecation engine: what makes an ISP unusable, what brings it back, and no flapping under loss."""

import random
from ipaddress import IPv6Address as A

import pytest

from agents.deprecation.engine import DeprecationEngine, Hysteresis
from agents.deprecation.radvd import Advert, render
from agents.exitpath.daemon import deprecated_addresses
from agents.exitpath.engine import ExitPathCache, Withdraw


def _engine(**hyst):
    eng = DeprecationEngine.create({"ispa": True}, ["ispb"], Hysteresis(**hyst))
    eng.routes(0.0, "ispa", True)
    return eng


def test_nothing_counts_before_the_routes_were_seen_once():
    eng = DeprecationEngine.create({"ispa": True}, [])
    assert eng.routes(0.0, "ispa", False) == [] and eng.probe(0.1, "ispa", False) == []
    assert eng.preferred("ispa")


def test_routes_gone_deprecates_at_once_and_probes_bring_it_back_after_hold_down():
    eng = _engine(up_after=3, hold_down=2.0)
    [ch] = eng.routes(1.0, "ispa", False)
    assert not ch.preferred and "BGP" in ch.reason and not eng.preferred("ispa")
    for t in (1.1, 1.2, 1.3, 1.4):
        assert eng.probe(t, "ispa", True) == []  # routes still gone
    assert eng.routes(1.5, "ispa", True) == []
    for t in (1.6, 1.7, 1.8):
        assert eng.probe(t, "ispa", True) == []  # answered, but within the hold-down
    [back] = eng.probe(3.1, "ispa", True)
    assert back.preferred and eng.preferred("ispa")


def test_lost_probes_in_a_row_deprecate_an_isp_whose_session_stays_up():
    eng = _engine(down_after=3)
    assert eng.probe(1.0, "ispa", False) == [] and eng.probe(1.1, "ispa", False) == []
    eng.probe(1.15, "ispa", True)  # one answer resets the count
    assert eng.probe(1.2, "ispa", False) == [] and eng.probe(1.3, "ispa", False) == []
    [ch] = eng.probe(1.4, "ispa", False)
    assert not ch.preferred and "3 probes" in ch.reason


def test_a_remote_exit_announces_and_a_silent_one_counts_as_down():
    eng = _engine(peer_timeout=0.5)
    assert eng.heard(0.1, "ispb", True) == []
    [down] = eng.heard(0.2, "ispb", False, "rb: routes gone")
    assert not down.preferred and down.reason == "rb: routes gone"
    [up] = eng.heard(0.3, "ispb", True)
    assert up.preferred
    assert eng.tick(0.7) == []
    [silent] = eng.tick(0.81)
    assert not silent.preferred and "silent" in silent.reason
    assert eng.tick(5.0) == []  # said once
    [again] = eng.heard(5.1, "ispb", True)
    assert again.preferred


@pytest.mark.parametrize("seed", range(5))
def test_no_flapping_under_five_percent_loss_each_way(seed):
    """60 s of probes every 100 ms, each direction losing 5 %: no deprecation with the defaults."""
    rng = random.Random(seed)
    eng = _engine()
    changes = []
    for i in range(600):
        ok = rng.random() > 0.05 and rng.random() > 0.05
        changes += eng.probe(i * 0.1, "ispa", ok)
    assert changes == []


def test_a_dead_isp_is_found_within_a_second_with_the_defaults():
    eng = _engine()
    t, found = 10.0, None
    while found is None:
        t += 0.1
        found = next(iter(eng.probe(t + 0.2, "ispa", False)), None)  # each loss known at its timeout
    assert found.at - 10.0 <= 1.0


def test_radvd_config_gives_a_dead_isps_prefixes_preferred_lifetime_zero():
    ads = [Advert("lan", "2001:db8:a001:1::/64", "ispa"), Advert("lan", "2001:db8:b001:1::/64", "ispb"),
           Advert("lan2", "2001:db8:a001:2::/64", "ispa")]
    text = render(ads, {"ispa": False})
    assert text.count("interface ") == 2 and "AdvDefaultLifetime 0;" in text
    blocks = text.split("prefix ")[1:]
    assert [("AdvPreferredLifetime 0;" in b) for b in blocks] == [True, False, True]
    assert "AdvAutonomous on" in text and "AdvOnLink off" in text


def test_bad_hysteresis_is_refused():
    with pytest.raises(ValueError):
        Hysteresis(down_after=0)
    with pytest.raises(ValueError):
        DeprecationEngine.create({"ispa": True}, ["ispa"])


def test_the_exit_path_cache_drops_entries_of_a_deprecated_source(tmp_path):
    """6.3.1.2 with 6.3.1.2.1: an entry pinned to a source the site deprecated must not outlive it."""
    a, b, srv, other = A("2001:db8:a001:1::10"), A("2001:db8:b001:1::10"), A("2001:db8:f000::10"), A("2001:db8:f000::20")
    cache = ExitPathCache((a, b))
    cache.race_started(0.0, srv, a)
    cache.received(0.01, srv, a)
    cache.received(0.02, other, b)
    actions = cache.deprecated(1.0, a)
    assert [x.dst for x in actions if isinstance(x, Withdraw)] == [srv]
    assert cache.lookup(1.0, srv) is None and cache.lookup(1.0, other) == b
    proc = tmp_path / "if_inet6"
    proc.write_text("20010db8a001000100000000000000010 02 40 00 a0 lan\n"
                    "20010db8b001000100000000000000010 02 40 00 80 lan\n".replace("00010 02", "0010 02"))
    assert deprecated_addresses(str(proc)) == {A("2001:db8:a001:1::10")}
