"""Suite-wide set-up.  Under pytest-xdist (``make test`` runs lab modules in parallel, one module per
worker at a time) each worker keeps its labs in a run root of its own, so two modules that deploy a lab
file under its default name never share a run directory; cleanup stays exact per lab, by journal."""

from __future__ import annotations

import os

_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
if _WORKER and "MHLAB_RUN_ROOT" not in os.environ:
    os.environ["MHLAB_RUN_ROOT"] = f"/run/mhlab-ci/{_WORKER}"
