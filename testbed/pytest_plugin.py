"""pytest plugin (entry point ``mhlab``): a module-scoped ``lab`` fixture, root marker, polling helpers.

Use in a test module (any lab kind; keyword arguments other than ``name`` and ``mechanism`` override fields
of the file, e.g. ``hosting=2`` for an i2p lab)::

    pytestmark = [pytest.mark.lab, pytest.mark.mhlab_topology("topologies/two-isp-site.yaml", name="t1")]

    def test_bgp(lab):
        wait_json(lab, "ra", "show bgp summary json", {"ipv6Unicast": {"peers": {...}}})

    def test_failover(lab, scenario):
        assert scenario(lab, "scenarios/baseline-link-down.yaml").passed

Tests marked ``lab`` are skipped when not root.  ``--keep-lab`` leaves labs up for a look afterwards.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, TypeVar

import pytest

from . import wait
from .frr import json_cmp
from .kinds import parse_lab
from .lab import Lab
from .scenario.run import run_scenario
from .yamlmarks import MarkedDoc, load_marked

T = TypeVar("T")


def pytest_addoption(parser):
    group = parser.getgroup("mhlab")
    group.addoption("--keep-lab", action="store_true", help="do not destroy labs after their tests")
    group.addoption("--mhlab-run-root", default=None, help="run directory root for test labs")


def pytest_configure(config):
    config.addinivalue_line("markers", "lab: needs root; builds real namespaces with Mininet")
    config.addinivalue_line("markers", "mhlab_topology(path, name=None, mechanism=None, **fields): the lab "
                                       "file of the module's `lab` fixture (path relative to the rootdir; "
                                       "fields override the file's top-level keys)")


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
    def run(lab: Lab, path: str | Path):
        path = Path(path)
        if not path.is_absolute():
            path = Path(request.config.rootpath) / path
        return run_scenario(path, tmp_path / path.stem, lab=lab).result
    return run


def deploy_for_test(path: Path, config, name: str | None = None, mechanism: str | None = None,
                    **fields: Any) -> Lab:
    """Deploy the lab file ``path`` of any kind: optionally renamed, with top-level ``fields`` overridden,
    or (multihoming) with every site switched to ``mechanism``."""
    doc = load_marked(path)
    if fields:
        doc = MarkedDoc({**doc.data, **fields}, doc.file, doc.lines)
    model = parse_lab(doc)
    if mechanism:
        model = model.with_mechanism(mechanism)
    return Lab.deploy(model, name=name, root=config.getoption("--mhlab-run-root"))


def wait_json(lab: Lab, router: str, command: str, expected, timeout: float = 30.0,
              min_timeout: float = 0.0, interval: float = 0.2) -> dict:
    """Poll ``show … json`` on ``router`` until it subset-matches ``expected``; fail with the last difference.

    ``min_timeout`` keeps polling at least that long before giving up even on a fast machine.
    """
    try:
        return wait.wait_until(lambda: lab.vtysh_json(router, command), timeout, interval, min_timeout,
                               ok=lambda actual: json_cmp(actual, expected) is None,
                               what=f"{router}: `{command}` matching")
    except wait.WaitTimeout as exc:
        pytest.fail(f"{router}: `{command}` did not match within {exc.timeout:g} s: {json_cmp(exc.last, expected)}")


def wait_until(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.1, what: str = "condition",
               min_timeout: float = 0.0, **kwargs: Any) -> T:
    """:func:`testbed.wait.wait_until` for tests: a timeout is a test failure naming ``what``."""
    try:
        return wait.wait_until(predicate, timeout, interval, min_timeout, what=what, **kwargs)
    except wait.WaitTimeout as exc:
        pytest.fail(str(exc))
