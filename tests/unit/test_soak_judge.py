"""How a soak under a flapping link is judged: loss only inside a flap's window, RSS trend against noise,
exceptions in logs, BGP session outages from bgpd's log."""

import calendar

from testbed.soak import (Flap, bgp_outages, excess_failures, excess_gaps, log_problems, outage_story, outages_during,
                          trend)

FLAPS = [Flap(5.0, 8.0), Flap(15.0, 18.0)]


def test_gaps_inside_their_flap_window_are_fine():
    gaps = [(4.9, 9.5, False), (15.2, 23.9, False)]
    assert excess_gaps("f", gaps, FLAPS, lead=1.0, recover=6.0) == []


def test_a_gap_outside_every_window_or_outlasting_it_or_open_is_loss():
    gaps = [(14.2, 14.4, False), (5.1, 14.5, False), (16.0, 30.0, True)]
    ex = excess_gaps("f", gaps, FLAPS, lead=0.5, recover=6.0)
    assert [e.why.split(" ")[0] for e in ex] == ["no", "outlasts", "never"]
    assert ex[1].why.startswith("outlasts its flap (up at 8.0 s) by 6.5 s")


def test_overlapping_windows_judge_a_gap_by_the_flap_it_starts_in():
    fast = [Flap(5.5, 7.5), Flap(13.5, 15.5)]  # 8 s period: the first window (up + 6 s) reaches past 13.0
    assert excess_gaps("f", [(13.0, 16.4, False)], fast, lead=2.0, recover=6.0) == []
    assert len(excess_gaps("f", [(13.0, 22.0, False)], fast, lead=2.0, recover=6.0)) == 1


def test_start_up_gaps_before_the_first_flap_are_not_judged():
    assert excess_gaps("f", [(0.0, 1.5, False)], FLAPS, 1.0, 6.0, since=3.0) == []
    assert len(excess_gaps("f", [(0.0, 3.5, False)], FLAPS, 1.0, 6.0, since=3.0)) == 1


def test_failed_attempts_count_only_outside_the_windows():
    attempts = [(4.5, False), (9.0, True), (12.0, False), (13.9, False), (20.0, False)]
    ex = excess_failures("p", attempts, FLAPS, lead=1.0, recover=6.0)
    assert [e.start for e in ex] == []  # 12.0 and 13.9 are within up+6 of the first flap
    ex = excess_failures("p", attempts, FLAPS, lead=1.0, recover=2.0)
    assert [e.start for e in ex] == [12.0, 13.9]


def test_flat_and_noisy_memory_does_not_grow():
    minutes = list(range(1, 61))
    flat = [30000 + (37 * i) % 300 for i in minutes]  # +-150 kB of page noise
    assert not trend(minutes, flat).grows
    startup = [20000 + min(i, 3) * 100 for i in minutes]  # a little growth that stops
    assert not trend(minutes, startup).grows


def test_a_steady_leak_grows():
    minutes = list(range(1, 61))
    leak = [30000 + 20 * i + (37 * i) % 200 for i in minutes]  # 20 kB a minute: 1.2 MB an hour
    t = trend(minutes, leak)
    assert t.grows and 18 < t.slope_kb_per_min < 22 and t.growth_kb > t.noise_kb


def test_too_few_samples_say_nothing():
    assert not trend([1, 2], [1000, 90000]).grows


def test_log_problems_name_file_and_line(tmp_path):
    (tmp_path / "agent.log").write_text("started\nTraceback (most recent call last):\n  File x\n")
    (tmp_path / "bgpd.log").write_text("2026/12/01 BGP: Received signal 11 at 1700000000 (si_addr 0x0)\n")
    (tmp_path / "ok.log").write_text("neighbor up\nconnection error: timeout\n")
    found = log_problems(tmp_path.glob("*.log"))
    assert [f.split(":")[1] for f in found] == ["2", "1"]
    assert found[0].startswith(str(tmp_path / "agent.log"))


BGPD_LOG = """\
2026/12/01 14:13:53 BGP: [N9HHH-F8H1M] %ADJCHANGE: neighbor 2001:db8:a000::1(ispa) in vrf default Up
2026/12/01 14:13:53 BGP: [N9HHH-F8H1M] %ADJCHANGE: neighbor 2001:db8:f000:2::2 in vrf default Up
2026/12/01 14:33:50 BGP: [PXVXG-TFNNT] %ADJCHANGE: neighbor 2001:db8:a000::1(ispa) in vrf default Down Interface down
2026/12/01 14:33:52 BGP: [PXVXG-TFNNT] %ADJCHANGE: neighbor 2001:db8:a000::1(ispa) in vrf default Down Peer closed the session
2026/12/01 14:34:36 BGP: [ZM2F8-MV4BJ][EC 33554509] Interface: ispa does not have a v6 LL address associated with it
2026/12/01 14:34:36 BGP: [N9HHH-F8H1M] %ADJCHANGE: neighbor 2001:db8:a000::1(ispa) in vrf default Up
2026/12/01 14:34:41 BGP: [PXVXG-TFNNT] %ADJCHANGE: neighbor 2001:db8:f000:2::2 in vrf default Down Interface down
"""


def test_bgp_outages_pair_each_down_with_the_next_up():
    out = bgp_outages("ra", BGPD_LOG.splitlines())
    assert [(o.peer, o.up - o.down if o.up else None, o.why) for o in out] == \
        [("ispa", 46.0, "Interface down"), ("2001:db8:f000:2::2", None, "Interface down")]
    assert out[0].down == calendar.timegm((2026, 12, 1, 14, 33, 50, 0, 0, 0))  # the log's clock is UTC
    assert [o.peer for o in outages_during(out[0].down + 10, out[0].down + 20, out)] == ["ispa"]
    assert [o.peer for o in outages_during(out[0].up + 1, None, out)] == ["2001:db8:f000:2::2"]  # still down
    assert outages_during(out[0].down - 30, out[0].down - 1, out) == []


STORY_LOG = """\
2026/12/01 17:30:06 BGP: [PXVXG-TFNNT] %ADJCHANGE: neighbor 2001:db8:a000::1(ispa) in vrf default Down Interface down
2026/12/01 17:30:07 BGP: [T72VK-55DVG] 2001:db8:a000::1 [FSM] Waiting for NHT
2026/12/01 17:30:10 BGP: [T72VK-55DVG] 2001:db8:a000::1 [FSM] Waiting for NHT
2026/12/01 17:30:11 BGP: [Z195V-FNKRK] 2001:db8:a000::1 [Event] Connect start to 2001:db8:a000::1 fd 18
2026/12/01 17:30:12 BGP: [JFMSW-YMBC7] 2001:db8:a000::1 [FSM] Timer (connect timer expire)
2026/12/01 17:30:12 BGP: [Z195V-FNKRK] 2001:db8:a000::1 [Event] Connect start to 2001:db8:a000::1 fd 18
2026/12/01 17:30:12 BGP: [T72VK-55DVG] 2001:db8:f000::1 [FSM] Waiting for NHT
2026/12/01 17:30:13 BGP: [JFMSW-YMBC7] 2001:db8:a000::1 [FSM] Timer (connect timer expire)
2026/12/01 17:30:13 BGP: [Z195V-FNKRK] 2001:db8:a000::1 [Event] Connect start to 2001:db8:a000::1 fd 18
2026/12/01 17:30:15 BGP: [YTARA-Q9ZD1] [Event] BGP connection from host 2001:db8:a000::1 fd 19
2026/12/01 17:30:15 BGP: [HZN6M-XRM1G] %NOTIFICATION: sent to neighbor 2001:db8:a000::1 6/7 (Cease/Connection Collision Resolution) 0 bytes
2026/12/01 17:30:15 BGP: [N9HHH-F8H1M] %ADJCHANGE: neighbor 2001:db8:a000::1(ispa) in vrf default Up
2026/12/01 17:30:16 BGP: [Z195V-FNKRK] 2001:db8:a000::1 [Event] Connect start to 2001:db8:a000::1 fd 18
"""


def test_an_outage_story_counts_what_bgpd_did_for_that_peer_while_it_was_down():
    (outage,) = bgp_outages("ra", STORY_LOG.splitlines())
    assert outage.address == "2001:db8:a000::1" and outage.up - outage.down == 9.0
    story = outage_story(STORY_LOG.splitlines(), outage)
    # another peer's NHT wait and the try after the session was up again are not this outage's
    assert (story.tries, story.abandoned, story.nht_waits, story.accepted, story.notifications) == (3, 2, 2, 1, 1)
    assert story.first_try_s == 5.0 and story.errors == 0


def test_an_outage_story_without_debug_lines_is_empty():
    lines = [line for line in STORY_LOG.splitlines() if "ADJCHANGE" in line]
    story = outage_story(lines, bgp_outages("ra", lines)[0])
    assert story.tries == story.lines - 2 == 0 and story.first_try_s is None  # only the two ADJCHANGE lines
