"""experiments/stage1_compare.py's figures: medians that treat "never" (never told, never recovered) as the
worst value, and a table that shows a fault's runs and code-5 rejections."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[2] / "experiments" / "stage1_compare.py"


@pytest.fixture(scope="module")
def sc():
    spec = importlib.util.spec_from_file_location("stage1_compare", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_never_counts_as_the_worst_value_in_a_median(sc):
    assert sc.median([2000, None, 1000]) == 2000
    assert sc.median([None, None, 1000]) is None
    assert sc.median([1000, 3000]) == 2000
    assert sc.median([1000, None]) is None
    assert sc.median([5]) == 5


def test_the_table_shows_medians_runs_and_code_5(sc):
    run = {"void_ms": 20, "told_ms": 20, "recovery_ms": None, "gap_a_ms": 30, "isp_code5": 700, "exit_code5": 0}
    fault = sc.repeated([run])
    row = {"lab": "campus.yaml", "variant": "sadr-static", "reach": "16/16", "wrong_exit": 0, "configured": 8,
           "installed": 8, "converge_s": 4.8, "stretch_hops": 0, "mtu_b": 1500,
           **{f: fault for f in sc.FAULTS}}
    line = sc.table([row]).splitlines()[2]
    assert "20 / 20 / 30 / -; 700 / 0 (1 run)" in line
    assert sc.table([{**row, "reach": "8/16"}]).count("n/a (no path before the fault)") == len(sc.FAULTS)
