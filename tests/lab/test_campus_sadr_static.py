"""``sadr-static`` on the campus lab: every host address leaves through its own ISP, and ISP B's access link
failing or its exit router's power-off leaves ISP A's traffic untouched and tells the host (campus_cases).
The power-off works because of two things a static configuration has on a real router: routes through a
link that comes back are put back (testbed.faults), and a packet whose route went with its link meets the
last-resort ``unreachable ::/0 from P`` instead of leaving by another ISP's exit."""

import pytest

import campus_cases as cases
from campus_cases import (campus_lab, test_every_host_address_reaches_srv_through_its_own_isp,  # noqa: F401
                          test_isp_b_access_link_down_tells_the_host_and_spares_isp_a)

pytestmark = pytest.mark.lab
campus = campus_lab("sadr-static")


def test_isp_b_exit_router_crash_tells_the_host_and_spares_isp_a(campus):
    out = cases.fail_isp_b_and_repair(campus, cases.power_off(campus, cases.EXIT_B), recover_s=8.0)
    cases.assert_isp_a_untouched_and_host_told(out)
