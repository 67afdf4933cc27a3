"""The generated N-site labs: valid address plans without overlaps, from 1 site to past one /40 per ISP."""

import functools
import ipaddress
import itertools

import pytest

from testbed.generate import MAX_SITES, n_sites
from testbed.netplan import build_netplan


@functools.cache
def _net(n):
    return build_netplan(n_sites(n))


def _prefixes(net):
    plan = net.plan
    return [p for per_isp in plan.site_prefixes.values() for p in per_isp.values()]


@pytest.mark.parametrize("n", [1, 250, 251, 500])
def test_plan_validates_and_site_prefixes_are_disjoint(n):
    net = _net(n)
    prefixes = _prefixes(net)
    assert len(prefixes) == 2 * n and len(set(prefixes)) == 2 * n
    aggs = net.plan.aggregates
    for site, per_isp in net.plan.site_prefixes.items():
        for isp, p in per_isp.items():
            assert p.prefixlen == 48 and p.subnet_of(aggs[isp]), (site, isp, p)
    for a, b in itertools.combinations(aggs.values(), 2):
        assert not a.overlaps(b), (a, b)
    assert len({net.topology.site_asn(s) for s in net.topology.sites}) == n
    assert sum(1 for r in net.routers()) == 2 * n + 3


def test_plan_of_500_sites_has_no_overlapping_segments():
    net = _net(500)
    subnets = sorted({s for seg in net.plan.segments for s in seg.subnets},
                     key=lambda s: int(s.network_address))
    assert len(subnets) == sum(len(seg.subnets) for seg in net.plan.segments)
    for lo, hi in zip(subnets, subnets[1:]):
        assert not lo.overlaps(hi), (lo, hi)


def test_small_labs_keep_the_40_per_isp():
    assert str(_net(250).plan.aggregates["ispa"]) == "2001:db8:a000::/40"
    assert _net(500).plan.aggregates["ispa"] == ipaddress.IPv6Network("2001:db8:a000::/36")


@pytest.mark.parametrize("n", [0, MAX_SITES + 1])
def test_out_of_range_is_refused(n):
    with pytest.raises(ValueError, match="between 1 and"):
        n_sites(n)
