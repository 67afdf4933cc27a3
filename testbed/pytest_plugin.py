"""pytest plugin (entry point ``mhlab``): a module-scoped ``lab`` fixture, root marker, polling helpers.

Use in a test module (any lab kind; keyword arguments other than ``name`` and ``mechanism`` override fields
of the file, e.g. ``hosting=2`` for an i2p lab)::

    pytestmark = [pytest.mark.lab, pytest.mark.mhlab_topology("topologies/two-isp-site.yaml", name="t1")]

    def test_bgp(lab):
        wait_json(lab, "ra", "show bgp summary json", {"ipv6Unicast": {"peers": {...}}})

    def test_failover(lab, scenario):
        assert scenario(lab, "scenarios/baseline-link-down.yaml").passed

Tests marked ``lab`` are skipped when not root.  ``--keep-lab`` leaves labs up for a look afterwards.
When a test of a module fails (a first attempt that a rerun then passes included), the module's lab leaves a
copy of its run directory's logs, journal and meta (the readiness report) in pytest's temporary folder,
``failed-labs/<lab>``, before it is destroyed: a failure seen once in CI can be read afterwards.
"""

from __future__ import annotations

import os
import shutil
import warnings
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

FAILED = pytest.StashKey[bool]()  # on a module: one of its tests failed (any attempt)
KEPT_SUFFIXES = {".out", ".log", ".err", ".json", ".jsonl", ".txt", ".yaml", ".conf", ".ip"}


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
def lab(request, tmp_path_factory):
    """The module's lab, deployed once (from its ``mhlab_topology`` marker) and always destroyed."""
    marker = request.node.get_closest_marker("mhlab_topology")
    if marker is None:
        pytest.fail("the `lab` fixture needs pytestmark = pytest.mark.mhlab_topology('file.yaml')")
    path = Path(marker.args[0])
    if not path.is_absolute():
        path = Path(request.config.rootpath) / path
    the_lab = deploy_for_test(path, request.config, **marker.kwargs)
    yield the_lab
    if request.node.stash.get(FAILED, False):
        dest = keep_logs(the_lab, tmp_path_factory.getbasetemp() / "failed-labs")
        warnings.warn(f"lab {the_lab.name}: a test of {request.node.name} failed; its logs are in {dest}",
                      stacklevel=1)
    if not request.config.getoption("--keep-lab"):
        the_lab.destroy()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Mark the module of a test whose setup, call or teardown failed (before a rerun plugin relabels it)."""
    outcome = yield
    module = item.getparent(pytest.Module)
    if outcome.get_result().failed and module is not None:
        module.stash[FAILED] = True


def keep_logs(lab: Lab, under: Path) -> Path:
    """A copy of the text files of ``lab``'s run directory (logs, journal, meta, configs; no sockets or
    captures) in ``under/<lab>`` (``<lab>.2``, ... for a lab of that name already kept: a rerun's fresh lab
    after the failed attempt's); returns that folder."""
    dest = under / lab.name
    copy = 1
    while dest.exists():
        copy += 1
        dest = under / f"{lab.name}.{copy}"
    for src in lab.rundir.path.rglob("*"):
        if src.suffix in KEPT_SUFFIXES and src.is_file() and not src.is_symlink():
            target = dest / src.relative_to(lab.rundir.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
    return dest


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
