"""``sadr-bgp`` on the campus lab: every host address leaves through its own ISP, and ISP B's access link
failing or its exit router crashing leaves ISP A's traffic untouched and tells the host (campus_cases)."""

import pytest

from campus_cases import (campus_lab, test_every_host_address_reaches_srv_through_its_own_isp,  # noqa: F401
                          test_isp_b_access_link_down_tells_the_host_and_spares_isp_a,
                          test_isp_b_exit_router_crash_tells_the_host_and_spares_isp_a)

pytestmark = pytest.mark.lab
campus = campus_lab("sadr-bgp")
