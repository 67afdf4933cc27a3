"""Suite-wide set-up.  Under pytest-xdist (``make test`` runs lab modules in parallel, one module per
worker at a time) each worker keeps its labs in a run root of its own, so two modules that deploy a lab
file under its default name never share a run directory; cleanup stays exact per lab, by journal.

A lab test that fails runs once more (pytest-rerunfailures; the summary names it, ``RERUN <test>``, with
the failed attempt's traceback): on a loaded two-core machine a timing assertion can lose a race once; a
real defect fails both runs.  A rerun starts from a known state, not from what the failed attempt left:
the module's lab (every module- and class-scoped fixture the test uses) is torn down - its logs kept under
``failed-labs/`` - and set up afresh before the rerun.  Unit tests never rerun."""

from __future__ import annotations

import os

import pytest

from testbed.pytest_plugin import FAILED

_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
if _WORKER and "MHLAB_RUN_ROOT" not in os.environ:
    # $MHLAB_CI_RUN_BASE lets two whole-suite runs on one machine keep apart (default /run/mhlab-ci)
    os.environ["MHLAB_RUN_ROOT"] = f"{os.environ.get('MHLAB_CI_RUN_BASE', '/run/mhlab-ci')}/{_WORKER}"


LAB_RERUNS = 1
FRESH_SCOPES = ("module", "class")  # what a rerun sets up again; session-scoped fixtures are shared


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    """``-r`` lists reruns too (``RERUN <test>`` in the summary; pytest's ``a`` does not include them), each
    with the failed attempt's traceback: a first failure that its rerun then passed is still read in CI's log."""
    if config.option.reportchars and "R" not in config.option.reportchars:
        config.option.reportchars += "R"
    config.option.rerun_show_tracebacks = True


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("lab") and not item.get_closest_marker("flaky"):
            item.add_marker(pytest.mark.flaky(reruns=LAB_RERUNS, reruns_delay=2))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Before a rerun (pytest-rerunfailures counts attempts in ``execution_count``), tear down the module-
    and class-scoped fixtures the test uses, so they are set up again: a test that changed its lab and then
    failed must not rerun on what it left.  The failed attempt's lab keeps its logs (its module is marked
    failed); the fresh lab starts unmarked."""
    if getattr(item, "execution_count", 1) <= 1:
        return
    for fixturedef in fresh_fixturedefs(item):
        fixturedef.finish(item._request)
    module = item.getparent(pytest.Module)
    if module is not None:
        module.stash[FAILED] = False


def fresh_fixturedefs(item) -> list:
    """The set-up fixtures of ``item`` a rerun sets up again: module or class scope, latest first."""
    infos = item._fixtureinfo.name2fixturedefs
    defs = [infos[name][-1] for name in item._fixtureinfo.names_closure if name in infos]
    return [d for d in reversed(defs) if d.scope in FRESH_SCOPES and d.cached_result is not None]
