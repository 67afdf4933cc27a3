"""Mechanism `none` reproduces the thesis's problem: the ISP-B source leaves via ISP A and is filtered."""

import pytest

from testbed.checks import http_get, ping, run_all
from testbed.pytest_plugin import deploy_for_test
from pathlib import Path

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def none_lab(request):
    lab = deploy_for_test(Path(request.config.rootpath) / "topologies/two-isp-site.yaml", request.config,
                          name="tnone", mechanism="none")
    yield lab
    lab.destroy()


def test_isp_a_address_works(none_lab):
    lab = none_lab
    src, dst = lab.plan.address("h1", "ispa"), lab.plan.address("srv")
    assert ping(lab, "h1", src, dst)
    assert http_get(lab, "h1", src, dst)[0]


def test_isp_b_address_is_dropped_by_isp_a_ingress_filter(none_lab):
    lab = none_lab
    src, dst = lab.plan.address("h1", "ispb"), lab.plan.address("srv")
    before = lab.nft_counter("ispa", "ingress_ra")
    assert not ping(lab, "h1", src, dst, count=2, wait=0.5)
    ok, detail = http_get(lab, "h1", src, dst, timeout=1)
    assert not ok
    after = lab.nft_counter("ispa", "ingress_ra")
    assert after >= before + 3, (before, after)  # 2 echo requests + at least one SYN
    assert lab.nft_counter("ispb", "ingress_rb") == 0


def test_mhlab_check_fails_the_ingress_filter(none_lab):
    """`mhlab check` counts drops during its own traffic: ISP A dropped the ISP-B-sourced packets."""
    checks = {c.name: c for c in run_all(none_lab)}
    assert not checks["ingress filter ispa/ingress_ra"].ok, checks["ingress filter ispa/ingress_ra"]
    assert checks["ingress filter ispb/ingress_rb"].ok
    assert not checks["ping h1 -> srv from its ispb address"].ok
