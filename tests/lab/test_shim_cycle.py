"""The by-hand link-down and the silent cut in ONE lab, one after the other: after ISP A1's router lost
its ISP link and got it back, ISP A2 going silent under a TCP stream must still switch hA within 10 s
(the pairs over A1 are still unreachable then, their Ti not over, and are the only ones that work).
The other shim lab tests run each check in a fresh lab; this one keeps what the first leaves behind."""

import pytest
import test_shim_by_hand as by_hand
import test_shim_feedback as feedback

pytestmark = [pytest.mark.lab, pytest.mark.mhlab_topology("topologies/two-sites-shim.yaml", name="shcycle")]


def test_silent_cut_after_a_link_down_up_cycle(lab, tmp_path):
    by_hand.test_link_down_under_a_ping_leaves_consistent_state(lab)
    a1, b1 = lab.plan.address("hA", "ispa1"), lab.plan.address("hB", "ispb1")
    assert feedback.pairs(lab, "hA", b1)[(a1, b1)]["state"] == "unreachable"  # the repaired pair's Ti runs
    feedback.test_silent_cut_is_noticed_through_tcp_timeouts(lab, tmp_path)
    preferred = next(p for p in feedback.pairs(lab, "hA", b1).values() if p["preferred"])
    assert preferred["local"] == a1, preferred  # back over the repaired ISP
