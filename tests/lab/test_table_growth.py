"""Baseline 4 on real kernels, small N: core's BGP table grows by one prefix per PI site, not under PA."""

import pytest

from testbed.table_growth import measure

pytestmark = [pytest.mark.lab]


def test_pi_grows_by_one_route_per_site_pa_stays_flat():
    samples = {(m, n): measure(n, m, quiet=0.5) for n in (1, 2, 3) for m in ("pi-bgp", "sadr-static")}
    aggregates = ("2001:db8:a000::/40", "2001:db8:b000::/40", "2001:db8:f000::/40")
    for n in (1, 2, 3):
        pi, pa = samples[("pi-bgp", n)], samples[("sadr-static", n)]
        assert pi.reachable and pa.reachable
        assert pa.prefixes == aggregates  # PA: the ISPs' aggregates and nothing else
        assert pi.routes == len(aggregates) + n  # PI: one more prefix per site ...
        assert pi.paths == len(aggregates) + 2 * n  # ... heard through both of its ISPs
