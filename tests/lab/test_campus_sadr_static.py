"""``sadr-static`` on the campus lab: every host address leaves through its own ISP, and ISP B's access link
failing leaves ISP A's traffic untouched and tells the host (campus_cases).  An exit router's power-off
is the static variant's known weakness, kept as a strict xfail so a fix shows."""

import pytest

import campus_cases as cases
from campus_cases import (campus_lab, test_every_host_address_reaches_srv_through_its_own_isp,  # noqa: F401
                          test_isp_b_access_link_down_tells_the_host_and_spares_isp_a)

pytestmark = pytest.mark.lab
campus = campus_lab("sadr-static")


@pytest.mark.xfail(strict=True, reason="the source-specific routes are kernel routes (FRR 8.4's staticd cannot "
                   "install `from` routes with a gateway): a link going down flushes them and nothing puts them "
                   "back, so after rb's power-off ra sends Pref_B by its destination-only BGP default to ISP A "
                   "(code 5) and ISP B never recovers")
def test_isp_b_exit_router_crash_tells_the_host_and_spares_isp_a(campus):
    out = cases.fail_isp_b_and_repair(campus, cases.power_off(campus, cases.EXIT_B), recover_s=8.0)
    cases.assert_isp_a_untouched_and_host_told(out)
