"""The supervisor reads a lab's journal as it grows (testbed.rundir.JournalTail, testbed.supervise.Latest):
each look parses only the lines appended since the last, a line still being written waits for its newline,
and the newest record of a (node, name) is the one it watches."""

from __future__ import annotations

import json

from testbed.procs import ProcRecord
from testbed.rundir import JournalTail, RunDir, append_record
from testbed.supervise import Latest


def test_only_new_complete_lines_are_read(tmp_path):
    journal = tmp_path / "journal.jsonl"
    tail = JournalTail(journal)
    assert tail.new() == []  # no journal yet
    append_record(journal, {"kind": "a"})
    append_record(journal, {"kind": "b"})
    assert tail.new() == [{"kind": "a"}, {"kind": "b"}]
    assert tail.new() == []
    with open(journal, "a") as f:
        f.write('{"kind": "c"')  # half-written
    assert tail.new() == []
    with open(journal, "a") as f:
        f.write('}\n{"kind": "d"}\n')
    assert tail.new() == [{"kind": "c"}, {"kind": "d"}]


def test_a_torn_line_is_skipped_and_reading_goes_on(tmp_path):
    journal = tmp_path / "journal.jsonl"
    journal.write_text('{"kind": "a"}\n{"kind": "tor\n{"kind": "b"}\n')
    assert JournalTail(journal).new() == [{"kind": "a"}, {"kind": "b"}]


def test_the_newest_record_of_a_service_is_watched(tmp_path):
    rundir = RunDir(tmp_path)
    rundir.journal.touch()
    first, second = ProcRecord("hA", "shim", 100, 1), ProcRecord("hA", "shim", 200, 2)
    rundir.record(first.as_dict())
    rundir.record(ProcRecord("hA", "anchor", 50, 1).as_dict())
    rundir.record({"kind": "link", "a": "hA", "b": "ra1"})
    latest = Latest.of(rundir)
    assert latest.update()[("hA", "shim")] == first
    rundir.record(second.as_dict())  # a restart
    assert latest.update()[("hA", "shim")] == second
    assert set(latest.update()) == {("hA", "shim"), ("hA", "anchor")}
    assert latest.update() == {(p.node, p.name): p for p in rundir.procs()}  # what a whole read gives


def test_what_a_look_parses_does_not_grow_with_the_journal(tmp_path):
    rundir = RunDir(tmp_path)
    for i in range(200):
        rundir.record(ProcRecord(f"n{i}", "daemon", 1000 + i, i, ("zebra", "-d")).as_dict())
    latest = Latest.of(rundir)
    latest.update()
    parsed = []
    latest.tail = _Counting(latest.tail, parsed)
    for _ in range(10):
        latest.update()
    assert parsed == [0] * 10  # nothing new, nothing parsed
    rundir.record(ProcRecord("n0", "daemon", 5000, 9).as_dict())
    latest.update()
    assert parsed[-1] == 1 and latest.procs[("n0", "daemon")].pid == 5000
    assert json.loads(rundir.journal.read_text().splitlines()[-1])["pid"] == 5000


class _Counting:
    """A JournalTail that notes how many records each ``new()`` returned."""

    def __init__(self, tail: JournalTail, counts: list[int]) -> None:
        self.tail, self.counts = tail, counts

    def new(self) -> list[dict]:
        out = self.tail.new()
        self.counts.append(len(out))
        return out
