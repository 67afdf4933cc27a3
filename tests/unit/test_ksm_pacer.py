"""The paced FRR start under a --ksm-budget: batches start only when they fit, ksmd's progress is waited
for, and a lab that cannot fit fails instead of waiting for ever."""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed.cli import main
from testbed.errors import LabError
from testbed.ksm import (PACE_MAX_BATCH, PACE_MIN_BATCH, RESERVE_KB_PER_ROUTER, KsmOptions, Pacer,
                         mem_available_kb)

MB = 1024
GB = 1024 * MB


class FakeHost:
    """MemAvailable that falls as routers start and rises as 'ksmd' merges ``merge_kb`` a tick."""

    def __init__(self, available: int, merge_kb: int = 0, floor_kb: int = 0) -> None:
        self.available, self.merge_kb, self.floor_kb, self.now = available, merge_kb, floor_kb, 0.0
        self.start = available

    def clock(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s
        used = self.start - self.available
        self.available += min(self.merge_kb, max(0, used - self.floor_kb))  # merging down to the floor

    def start_routers(self, n: int, kb: int) -> None:
        self.available -= n * kb


def _pacer(host: FakeHost, budget: int, **kw) -> Pacer:
    return Pacer(budget, read_available=lambda: host.available, clock=host.clock, sleep=host.sleep, **kw)


def test_with_room_batches_are_as_large_as_allowed_and_nothing_waits():
    host = FakeHost(20 * GB)
    pacer = _pacer(host, 6 * GB, per_router_kb=15 * MB)
    assert pacer.next_batch(503) == PACE_MAX_BATCH
    assert pacer.next_batch(3) == 3  # the last few start together
    assert pacer.waited == 0 and pacer.batches == 2


def test_a_batch_waits_for_ksmd_and_the_lab_stays_under_its_budget():
    host = FakeHost(20 * GB, merge_kb=40 * MB, floor_kb=int(0.5 * GB))
    pacer = _pacer(host, 2 * GB, per_router_kb=15 * MB)
    left, peak = 400, 0
    while left:
        n = pacer.next_batch(left)
        assert PACE_MIN_BATCH <= n <= PACE_MAX_BATCH or n == left
        assert pacer.footprint() + n * 15 * MB <= 2 * GB  # it fits before it starts
        host.start_routers(n, 15 * MB)
        peak = max(peak, pacer.footprint())
        left -= n
    assert peak <= 2 * GB and pacer.peak_kb <= 2 * GB
    assert pacer.waited > 0 and pacer.batches > 400 // PACE_MAX_BATCH


def test_a_lab_ksmd_cannot_shrink_fails_naming_the_budget():
    host = FakeHost(20 * GB)  # nothing merges
    pacer = _pacer(host, 1 * GB, per_router_kb=15 * MB, stall=5)
    host.start_routers(60, 15 * MB)  # 900 MB held: 8 more fit, fewer than a batch
    with pytest.raises(LabError, match=r"--ksm-budget of 1.00 GB.*kept for BGP.*100 routers still to start.*"
                                       r"freed no more in 5 s"):
        pacer.next_batch(100)
    assert 5 < host.now < 6


def test_the_last_routers_need_not_wait_for_a_whole_batch():
    host = FakeHost(20 * GB)
    pacer = _pacer(host, 1 * GB, per_router_kb=15 * MB, stall=5)
    host.start_routers(64, 15 * MB)  # 960 MB: 4 fit
    assert pacer.next_batch(3) == 3 and pacer.waited == 0


def test_the_reserve_is_kept_free():
    host = FakeHost(20 * GB)
    pacer = _pacer(host, 1 * GB, reserve_kb=100 * MB, per_router_kb=15 * MB, stall=5)
    host.start_routers(54, 15 * MB)  # 810 MB: 14 fit in the budget, 7 once 100 MB are kept
    assert pacer.fits() == 7
    assert pacer.next_batch(5) == 5


def test_the_options_make_a_pacer_only_under_a_budget():
    assert KsmOptions().pacer(503) is None
    pacer = KsmOptions(budget_gb=6).pacer(503)
    assert pacer.budget_kb == 6 * GB and pacer.reserve_kb == 503 * RESERVE_KB_PER_ROUTER


def test_mem_available_is_read_from_meminfo(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24000000 kB\nMemAvailable:   12345678 kB\n")
    assert mem_available_kb(meminfo) == 12345678
    meminfo.write_text("MemTotal: 1 kB\n")
    with pytest.raises(LabError, match="no MemAvailable"):
        mem_available_kb(meminfo)


def test_the_cli_wants_a_positive_budget_and_ksm_with_it(capsys):
    topo = str(Path(__file__).resolve().parents[2] / "topologies" / "two-isp-site.yaml")
    assert main(["deploy", topo, "--ksm-budget", "6"]) == 2
    assert "--ksm-budget paces the FRR start to ksmd's merging: give --ksm too" in capsys.readouterr().err
    assert main(["deploy", topo, "--ksm", "--ksm-budget", "0"]) == 2
    assert "a budget is a positive number of GB" in capsys.readouterr().err
