"""Deploy/destroy cycles of the default lab - clean, with the deploying process SIGKILLed at a random stage,
with a concurrent destroy - leave nothing behind and touch nothing that only looks like a lab's."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import soak_deploy  # noqa: E402

pytestmark = pytest.mark.lab


def test_three_abused_cycles_leave_nothing(capsys):
    """One cycle of each kind (about 40 s): CI's bound."""
    assert soak_deploy.main(["--cycles", "3", "--prefix", "rbsk", "--seed", "3"]) == 0, capsys.readouterr().out


@pytest.mark.slow
def test_ten_cycles_leave_nothing(capsys):
    assert soak_deploy.main(["--cycles", "10", "--prefix", "rbsl", "--seed", "7"]) == 0, capsys.readouterr().out
