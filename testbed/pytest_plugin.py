"""pytest plugin (entry point ``mhlab``): a module-scoped ``lab`` fixture, root marker, polling helpers.

Use in a test module::

    pytestmark = [pytest.mark.lab, pytest.mark.mhlab_topology("topologies/two-isp-site.yaml", name="t1")]

    def test_bgp(lab):
        wait_json(lab, "ra", "show bgp summary json", {"ipv6Unicast": {"peers": {...}}})

    def test_failover(lab, scenario):
        assert scenario(lab, "scenarios/baseline-link-down.yaml").passed

Tests marked ``lab`` are skipped when not root.  ``--keep-lab`` leaves labs up for a look afterwards.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from .frr import json_cmp
from .lab import Lab


def pytest_addoption(parser):
    group = parser.getgroup("mhlab")
    group.addoption("--keep-lab", action="store_true", help="do not destroy labs after their tests")
    group.addoption("--mhlab-run-root", default=None, help="run directory root for test labs")


def pytest_configure(config):
    config.addinivalue_line("markers", "lab: needs root; builds real namespaces with Mininet")
    config.addinivalue_line("markers", "mhlab_topology(path, name=None, **overrides): the topology of the "
                                       "module's `lab` fixture (path relative to the rootdir)")


def pytest_collection_modifyitems(config, items):
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="lab tests need root (network namespaces)")
    for item in items:
        if "lab" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def lab(request):
    """The module's lab, deployed once (from its ``mhlab_topology`` marker) and always destroyed."""
    marker = request.node.get_closest_marker("mhlab_topology")
    if marker is None:
        pytest.fail("the `lab` fixture needs pytestmark = pytest.mark.mhlab_topology('file.yaml')")
    path = Path(marker.args[0])
    if not path.is_absolute():
        path = Path(request.config.rootpath) / path
    the_lab = deploy_for_test(path, request.config, **marker.kwargs)
    yield the_lab
    if not request.config.getoption("--keep-lab"):
        the_lab.destroy()


@pytest.fixture
def scenario(request, tmp_path):
    """``scenario(lab, "topologies/x.yaml")`` runs a scenario file on a running lab (relative paths from the
    rootdir), writes its report under the test's tmp_path and returns the ScenarioResult."""
    from .scenario.run import run_scenario

    def run(lab: Lab, path: str | Path):
        path = Path(path)
        if not path.is_absolute():
            path = Path(request.config.rootpath) / path
        return run_scenario(path, tmp_path / path.stem, lab=lab).result
    return run


def deploy_for_test(path: Path, config, name: str | None = None, mechanism: str | None = None) -> Lab:
    """Deploy ``path`` (optionally renamed, or with every site switched to ``mechanism``)."""
    from .mechanisms import mechanisms
    from .topology import load_topology
    topo = load_topology(path, set(mechanisms()))
    if mechanism:
        topo = with_mechanism(topo, mechanism)
    return Lab.deploy(topo, name=name, root=config.getoption("--mhlab-run-root"))


def with_mechanism(topo, mechanism: str):
    """A copy of ``topo`` whose sites all run ``mechanism``."""
    sites = [s.model_copy(update={"mechanism": mechanism}) for s in topo.sites]
    new = topo.model_copy(update={"sites": sites})
    new._source = topo.source
    return new


def wait_json(lab: Lab, router: str, command: str, expected, timeout: float = 30.0,
              min_timeout: float = 0.0, interval: float = 0.2) -> dict:
    """Poll ``show … json`` on ``router`` until it subset-matches ``expected``; fail with the last difference.

    ``min_timeout`` keeps polling at least that long before giving up even on a fast machine.
    """
    start = time.monotonic()
    diff = "never queried"
    while True:
        actual = lab.vtysh_json(router, command)
        diff = json_cmp(actual, expected)
        if diff is None:
            return actual
        elapsed = time.monotonic() - start
        if elapsed > max(timeout, min_timeout):
            pytest.fail(f"{router}: `{command}` did not match within {timeout} s: {diff}")
        time.sleep(interval)


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.1, what: str = "condition"):
    """Poll ``predicate()`` until truthy; returns its value or fails naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not reached within {timeout} s")
        time.sleep(interval)
