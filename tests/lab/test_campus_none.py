"""The campus lab under mechanism ``none`` (destination-only routing): a packet from ISP B's prefix that
reaches ISP A's exit first leaves there, and ISP A rejects it with ICMPv6 code 5 - the problem the
stage-1 mechanisms solve (tests/lab/test_campus_<variant>.py)."""

import pytest

from campus_cases import campus_lab
from testbed.checks import ping

pytestmark = pytest.mark.lab
campus = campus_lab("none")


def test_none_sends_the_wrong_source_to_the_nearest_exit_which_rejects_it_with_code_5(campus):
    lab = campus
    dst = lab.plan.address("srv")
    src = lab.plan.address("h1", "ispb")  # h1 is behind c1, nearest exit ra (ISP A)
    before = lab.nft_counter("ispa", "ingress_ra")
    out = lab["h1"].run(["ping", "-6", "-n", "-c", "3", "-i", "0.2", "-W", "1", "-I", src, dst], timeout=10).stdout
    assert "Unknown code 5" in out or "policy" in out, out  # iputils names code 5 "Unknown code 5"
    assert lab.nft_counter("ispa", "ingress_ra") >= before + 3
    assert ping(lab, "h1", lab.plan.address("h1", "ispa"), dst)  # the ISP-A address is fine
