"""Faults in force are folded from the journal: applied, ended, orphaned, names reused."""

import os

from testbed.live.faultlog import faults_of, in_force, record_applied, record_end, record_fault
from testbed.live.faultspec import fault_from_words
from testbed.procs import ProcRecord, start_time
from testbed.rundir import RunDir


def _rundir(tmp_path):
    rd = RunDir(tmp_path / "lx")
    rd.create({"name": "lx"})
    return rd


def _holder(rd, name, pid, start):
    rd.record(ProcRecord("", f"fault:{name}", pid, start).as_dict())


def test_a_held_fault_is_active_until_its_end_record(tmp_path):
    rd = _rundir(tmp_path)
    fault = fault_from_words("link-down", ["ispa-ra"], name="cut")
    record_fault(rd, "cut", fault, "link-down ispa-ra", None)
    _holder(rd, "cut", os.getpid(), start_time(os.getpid()))  # this process stands in for the holder
    assert [e.state for e in in_force(rd)] == ["applying"]
    record_applied(rd, "cut", "ispa-ra down")
    [entry] = in_force(rd)
    assert (entry.state, entry.describe, entry.model()) == ("active", "ispa-ra down", fault)
    record_end(rd, "cut", "restored")
    assert in_force(rd) == [] and faults_of(rd)[0].state == "restored"


def test_a_fault_whose_holder_died_is_orphaned_and_names_can_be_reused(tmp_path):
    rd = _rundir(tmp_path)
    fault = fault_from_words("loss", ["ispa-ra", "30"], name="lossy", until=20)
    record_fault(rd, "lossy", fault, "loss ispa-ra 30", 20)
    _holder(rd, "lossy", os.getpid(), 1)  # wrong start time: not that process any more
    record_applied(rd, "lossy", "30% loss")
    [entry] = in_force(rd)
    assert entry.state == "orphaned" and 19 < entry.remaining() <= 20
    record_end(rd, "lossy", "re-created")
    record_fault(rd, "lossy", fault, "loss ispa-ra 30", None)
    assert [e.state for e in faults_of(rd)] == ["re-created", "orphaned"]
    assert [e.remaining() for e in in_force(rd)] == [None]
