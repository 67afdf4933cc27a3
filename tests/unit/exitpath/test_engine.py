"""The exit path cache engine against thesis 6.3.1.2: the entry-creation process and steps 1-5."""

import ipaddress
import random

import pytest

from agents.exitpath.engine import Decide, Event, ExitPathCache, Program, Timing, Withdraw

A = ipaddress.IPv6Address("2001:db8:a001:1::10")
B = ipaddress.IPv6Address("2001:db8:b001:1::10")
C = ipaddress.IPv6Address("2001:db8:c001:1::10")
NE = ipaddress.IPv6Address("2001:db8:f000::10")
NE2 = ipaddress.IPv6Address("2001:db8:f000::20")
T = Timing(lifetime=60.0, lock=1.0, probe_timeout=1.5, refresh=0.5)


def cache(sources=(A, B), seed=1):
    return ExitPathCache(sources, T, random.Random(seed))


def programs(actions):
    return [a for a in actions if isinstance(a, Program)]


def kinds(actions):
    return [a.kind for a in actions if isinstance(a, Event)]


# --- steps 1 and 2: look the destination up, use the entry's source ---------------------------

def test_step1_no_entry_means_no_source():
    assert cache().lookup(0.0, NE) is None


def test_step2_an_entry_gives_its_source_until_it_expires():
    c = cache()
    c.received(0.0, NE, B)
    assert c.lookup(10.0, NE) == B
    assert c.lookup(59.9, NE) == B
    assert c.lookup(60.0, NE) is None


# --- step 3: a race starts the timer, once per destination --------------------------------------

def test_step3_race_starts_one_timer_per_destination():
    c = cache()
    actions = c.race_started(0.0, NE, A)
    assert kinds(actions) == ["race"] and actions[0].detail["copies"] == 2
    assert c.next_deadline() == pytest.approx(1.5)
    assert c.race_started(0.2, NE, A) == []  # a second flow to NE while racing: same timer
    assert c.next_deadline() == pytest.approx(1.5)
    c.race_started(0.5, NE2, A)
    assert set(c.races) == {NE, NE2}


def test_step3_a_race_while_an_entry_is_valid_reprograms_the_kernel():
    c = cache()
    c.received(0.0, NE, B)
    assert c.race_started(5.0, NE, A) == [Program(NE, B, 60.0)]
    assert NE not in c.races


# --- step 4: the first reply creates the entry; the entry is locked ------------------------------

def test_step4_first_reply_creates_locked_entry_and_resolves_the_race():
    c = cache()
    c.race_started(0.0, NE, A)
    actions = c.received(0.030, NE, B)
    assert programs(actions) == [Program(NE, B, pytest.approx(60.030))]
    assert kinds(actions) == ["won"] and actions[1].detail["original"] == str(A)
    assert NE not in c.races and c.lookup(0.031, NE) == B
    assert c.entries[NE].how == "reply"
    # the reply to the other copy, just after, does not change the locked entry
    assert c.received(0.045, NE, A) == []
    assert c.lookup(0.05, NE) == B and c.counters.ignored_locked == 1
    # no timeout later: the race is over
    assert not any(isinstance(a, Decide) for a in c.tick(2.0))


def test_step4_reply_to_the_original_source_wins_too():
    c = cache()
    c.race_started(0.0, NE, A)
    c.received(0.01, NE, A)
    c.received(0.02, NE, B)
    assert c.lookup(0.5, NE) == A


# --- the entry-creation process on every received packet -----------------------------------------

def test_packet_to_the_entry_source_extends_lifetime():
    c = cache()
    c.received(0.0, NE, B)
    c.received(40.0, NE, B)
    assert c.lookup(99.9, NE) == B
    assert c.lookup(100.0, NE) is None


def test_extension_reprograms_the_kernel_only_when_half_the_lifetime_is_gone():
    c = cache()
    c.received(0.0, NE, B)
    assert c.received(10.0, NE, B) == []       # kernel entry still good for 50 s > 30 s
    assert c.received(31.0, NE, B) == [Program(NE, B, 91.0)]  # 29 s left < 30 s: refresh
    assert c.received(32.0, NE, B) == []


def test_extension_during_the_lock_still_counts():
    c = cache()
    c.received(0.0, NE, B)
    c.received(0.5, NE, B)
    assert c.entries[NE].expires == pytest.approx(60.5)


def test_packet_to_another_source_after_the_lock_updates_the_entry():
    c = cache()
    c.received(0.0, NE, B)
    actions = c.received(5.0, NE, A)
    assert programs(actions) == [Program(NE, A, 65.0)]
    assert kinds(actions) == ["updated"] and actions[1].detail["was"] == str(B)
    assert c.lookup(5.1, NE) == A and c.entries[NE].expires == pytest.approx(65.0)


def test_inbound_communication_creates_an_entry():
    c = cache()
    actions = c.received(0.0, NE, A)
    assert kinds(actions) == ["learned"] and c.entries[NE].how == "inbound"


def test_packets_not_to_our_sources_or_from_ourselves_are_ignored():
    c = cache()
    assert c.received(0.0, NE, C) == []
    assert c.received(0.0, A, B) == []
    assert c.entries == {}


# --- step 5: timeout keeps the last used source, else a random one --------------------------------

def test_step5_timeout_without_history_picks_a_random_source_and_creates_an_entry():
    chosen = set()
    for seed in range(20):
        c = cache(seed=seed)
        c.race_started(0.0, NE, A)
        assert c.tick(1.49) == []
        actions = c.tick(1.5)
        decide = [a for a in actions if isinstance(a, Decide)]
        assert len(decide) == 1 and decide[0].dst == NE
        assert programs(actions) == [Program(NE, decide[0].src, 61.5)]
        assert kinds(actions) == ["timeout"] and actions[-1].detail["chose"] == "random"
        assert c.lookup(2.0, NE) == decide[0].src and c.entries[NE].how == "timeout"
        chosen.add(decide[0].src)
    assert chosen == {A, B}  # really random over the host's sources


def test_step5_timeout_keeps_the_last_used_source_even_from_an_expired_entry():
    for seed in range(10):
        c = cache(seed=seed)
        c.received(0.0, NE, B)
        c.tick(60.0)            # expired
        assert c.lookup(61.0, NE) is None
        c.race_started(100.0, NE, A)
        actions = c.tick(101.5)
        assert Decide(NE, B) in actions and actions[-1].detail["chose"] == "last-used"


def test_step5_entry_stops_further_races_until_it_expires():
    c = cache()
    c.race_started(0.0, NE, A)
    c.tick(1.5)
    assert c.race_started(2.0, NE, A) == [Program(NE, c.lookup(2.0, NE), 61.5)]
    c.tick(61.5)
    assert kinds(c.race_started(62.0, NE, A)) == ["race"]   # detection runs again after expiry


def test_step5_a_reply_after_the_timeout_updates_once_the_lock_is_over():
    c = cache(seed=3)
    c.race_started(0.0, NE, A)
    c.tick(1.5)
    other = B if c.lookup(1.6, NE) == A else A
    assert c.received(2.0, NE, other) == []            # still locked (1 s from 1.5)
    assert programs(c.received(2.6, NE, other)) == [Program(NE, other, 62.6)]


# --- expiry ---------------------------------------------------------------------------------

def test_expiry_withdraws_and_remembers():
    c = cache()
    c.received(0.0, NE, B)
    assert c.next_deadline() == 60.0
    actions = c.tick(60.0)
    assert Withdraw(NE) in actions and kinds(actions) == ["expired"]
    assert c.entries == {} and c.history[NE] == B and c.next_deadline() is None


def test_an_expired_entry_is_recreated_by_the_next_packet():
    c = cache()
    c.received(0.0, NE, B)
    actions = c.received(70.0, NE, A)   # expired but not yet ticked: a fresh, locked entry
    assert kinds(actions) == ["learned"] and c.lookup(70.1, NE) == A
    assert c.received(70.5, NE, B) == []


# --- configuration and views -------------------------------------------------------------------

@pytest.mark.parametrize("kwargs", [{"lifetime": 0}, {"lock": -1}, {"probe_timeout": 0}, {"refresh": 1.0},
                                    {"lifetime": 1.0, "lock": 2.0}])
def test_bad_timing_is_refused(kwargs):
    with pytest.raises(ValueError):
        Timing(**kwargs)


def test_sources_must_be_given_and_distinct():
    with pytest.raises(ValueError):
        ExitPathCache(())
    with pytest.raises(ValueError):
        ExitPathCache((A, A))


def test_views():
    c = cache()
    c.race_started(0.0, NE, A)
    c.received(0.02, NE, B)
    [row] = c.cache_view(1.0)
    assert row["dst"] == str(NE) and row["src"] == str(B) and row["how"] == "reply"
    assert row["locked"] is True and row["expires_in"] == pytest.approx(59.02)
    status = c.status(1.0)
    assert status["entries"] == 1 and status["counters"]["won_by_reply"] == 1 and status["racing"] == []
    assert [e["kind"] for e in c.events_view()] == ["race", "won"]
    assert [e["kind"] for e in c.events_view(since=0.01)] == ["won"]
