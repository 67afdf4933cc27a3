"""Suite-wide set-up.  Under pytest-xdist (``make test`` runs lab modules in parallel, one module per
worker at a time) each worker keeps its labs in a run root of its own, so two modules that deploy a lab
file under its default name never share a run directory; cleanup stays exact per lab, by journal.

A lab test that fails runs once more (pytest-rerunfailures; ``-ra`` lists it as ``R``): on a loaded two-core
machine a timing assertion can lose a race once; a real defect fails both runs.  Unit tests never rerun."""

from __future__ import annotations

import os

import pytest

_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
if _WORKER and "MHLAB_RUN_ROOT" not in os.environ:
    # $MHLAB_CI_RUN_BASE lets two whole-suite runs on one machine keep apart (default /run/mhlab-ci)
    os.environ["MHLAB_RUN_ROOT"] = f"{os.environ.get('MHLAB_CI_RUN_BASE', '/run/mhlab-ci')}/{_WORKER}"


LAB_RERUNS = 1


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("lab") and not item.get_closest_marker("flaky"):
            item.add_marker(pytest.mark.flaky(reruns=LAB_RERUNS, reruns_delay=2))
