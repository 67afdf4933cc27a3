"""CLI words -> fault models of the scenario language, and link words -> link references."""

import pytest

from testbed.kinds import load_lab, netplan_for
from testbed.live.faultspec import FaultWordsError, default_name, fault_from_words, target_of
from testbed.live.faultwords import POSITIONAL
from testbed.live.links import LinkWordError, Port, capture_port, fault_link_ref
from testbed.scenario.model import FAULT_KINDS, DaemonKill, Flap, Loss, RateLimit

NET = netplan_for(load_lab("topologies/two-isp-site.yaml"))


def ref(word):
    return fault_link_ref(NET, word)


def test_every_fault_kind_of_the_language_has_words():
    assert set(POSITIONAL) == set(FAULT_KINDS)


@pytest.mark.parametrize("kind, words, expected", [
    ("link-down", ["ra-ispa"], {"link": "ispa-ra"}),
    ("isp-down", ["ispa"], {"isp": "ispa"}),
    ("upstream-cut", ["ispb"], {"isp": "ispb"}),
    ("loss", ["ispa-ra", "30%"], {"link": "ispa-ra", "percent": 30.0, "direction": "both"}),
    ("rate-limit", ["ispa-ra", "1MBit", "burst=80kb", "direction=forward"],
     {"rate": "1mbit", "burst": "80kb", "direction": "forward"}),
    ("flap", ["ra,ispa", "4000", "1000"], {"link": "ispa-ra", "period_ms": 4000, "down_ms": 1000}),
    ("router-crash", ["ra"], {"node": "ra"}),
    ("daemon-kill", ["rb"], {"node": "rb", "daemon": "bgpd"}),
    ("daemon-kill", ["rb", "zebra"], {"daemon": "zebra"}),
    ("bgp-reset", ["ra", "ispa", "hard=false"], {"node": "ra", "peer": "ispa", "hard": False}),
    ("delay", ["ispa-ra", "20", "5"], {"delay_ms": 20.0, "jitter_ms": 5.0}),
])
def test_words_make_the_scenario_model(kind, words, expected):
    fault = fault_from_words(kind, words, link_ref=ref)
    assert fault.kind == kind and fault.at == 0
    assert {k: getattr(fault, k) for k in expected} == expected


def test_for_becomes_until_and_models_are_the_scenario_classes():
    fault = fault_from_words("loss", ["ispa-ra", "5"], until=20, link_ref=ref)
    assert isinstance(fault, Loss) and fault.until == 20
    assert isinstance(fault_from_words("flap", ["ispa-ra", "2"], link_ref=ref), Flap)
    assert isinstance(fault_from_words("rate-limit", ["ispa-ra", "1mbit"], link_ref=ref), RateLimit)
    assert isinstance(fault_from_words("daemon-kill", ["ra"]), DaemonKill)


@pytest.mark.parametrize("kind, words, message", [
    ("link-dwn", ["ispa-ra"], "unknown fault kind 'link-dwn'"),
    ("loss", ["ispa-ra"], "loss needs PERCENT"),
    ("loss", ["ispa-ra", "130%"], "percent: Input should be less than or equal to 100"),
    ("rate-limit", ["ispa-ra", "fast"], "expected a tc rate"),
    ("flap", ["ispa-ra", "2000", "3000"], "down_ms must be shorter than period_ms"),
    ("link-down", ["ispa-ra", "extra"], "too many words: extra"),
    ("link-down", ["ispa-ra", "colour=red"], "colour: Extra inputs are not permitted"),
])
def test_bad_words_are_named(kind, words, message):
    with pytest.raises(FaultWordsError, match=message):
        fault_from_words(kind, words, link_ref=ref)


def test_default_names_say_kind_and_target_and_stay_unique():
    fault = fault_from_words("link-down", ["ra-ispa"], link_ref=ref)
    assert target_of(fault) == "ispa-ra"
    assert default_name(fault, set()) == "link-down-ispa-ra"
    assert default_name(fault, {"link-down-ispa-ra"}) == "link-down-ispa-ra-2"
    lan = fault_from_words("loss", ["h1:lan", "10"], link_ref=ref)
    assert lan.link == ("h1", "site-lan") and default_name(lan, set()) == "loss-h1-site-lan"


@pytest.mark.parametrize("word", ["ispa-ra", "ra-ispa", "ra,ispa", "ispa,ra", "ra:ispa", "ispa:ra"])
def test_a_link_by_any_of_its_names(word):
    assert ref(word) == "ispa-ra"


def test_lan_words():
    assert ref("h1:lan") == ("h1", "site-lan")
    with pytest.raises(LinkWordError, match="'site-lan' is a LAN: name one port"):
        ref("site-lan")
    assert capture_port(NET, "site-lan") == Port("br:site-lan", "br0")
    assert capture_port(NET, "ra-ispa") == Port("ispa", "ra")
    assert capture_port(NET, "ra:ispa") == Port("ra", "ispa")


def test_unknown_links_list_the_real_ones():
    with pytest.raises(LinkWordError, match=r"no link 'ispc-ra'; links: core-hosts, core-ispa, .*ispa-ra"):
        ref("ispc-ra")
    with pytest.raises(LinkWordError, match="ra has no interface 'eth0'; its interfaces: ispa, lan, rb"):
        ref("ra:eth0")
