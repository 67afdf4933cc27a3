"""Faults in force on a running lab, as records in its journal - so any shell (and ``destroy``) sees them.

Each fault applied by hand appends ``{"kind": "fault", ...}`` with the fault's model (enough to re-create its
Action with ``testbed.faults.prepare``), then its holder process (a ``proc`` record named ``fault:NAME``),
``fault-applied`` once it is in force, and ``fault-end`` when it is undone (restored, expired, failed).
The records are folded in order: a name can be reused once its fault has ended.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter

from ..procs import ProcRecord, is_alive
from ..rundir import RunDir
from ..scenario.model import Fault, FaultBase

HOLDER_PREFIX = "fault:"
_ADAPTER: TypeAdapter[Any] = TypeAdapter(Fault)


@dataclass
class FaultEntry:
    """One fault applied by hand, and what became of it."""

    name: str
    fault: dict[str, Any]
    words: str
    started: float
    duration: float | None = None
    describe: str = ""
    holder: ProcRecord | None = None
    applied: bool = False
    applied_at: float | None = None
    ended: dict[str, Any] | None = field(default=None)

    @property
    def kind(self) -> str:
        return str(self.fault.get("kind", ""))

    def model(self) -> FaultBase:
        return _ADAPTER.validate_python(self.fault)

    def holder_alive(self) -> bool:
        return self.holder is not None and is_alive(self.holder)

    @property
    def state(self) -> str:
        """``active`` (held), ``orphaned`` (its holder died: still in force, ``restore`` re-creates its undo),
        ``applying``, or how it ended."""
        if self.ended is not None:
            return str(self.ended.get("how", "ended"))
        if not self.applied:
            return "applying" if self.holder_alive() else "orphaned"
        return "active" if self.holder_alive() else "orphaned"

    def remaining(self, now: float | None = None) -> float | None:
        """Seconds left of ``--for``: counted from when the fault was in force (its holder's report)."""
        if self.duration is None:
            return None
        return max(0.0, (self.applied_at or self.started) + self.duration - (now or time.time()))

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "words": self.words, "describe": self.describe,
                "started": self.started, "for": self.duration, "remaining": self.remaining(), "state": self.state,
                "fault": self.fault, "holder": self.holder.pid if self.holder else None}


def fold(records: list[dict[str, Any]]) -> list[FaultEntry]:
    """Every fault of the journal, oldest first."""
    entries: list[FaultEntry] = []
    open_: dict[str, FaultEntry] = {}
    for r in records:
        kind = r.get("kind")
        if kind == "fault":
            e = FaultEntry(r["name"], r["fault"], r.get("words", ""), float(r.get("t", 0)), r.get("for"))
            entries.append(e)
            open_[e.name] = e
        elif kind == "proc" and str(r.get("name", "")).startswith(HOLDER_PREFIX):
            e = open_.get(r["name"][len(HOLDER_PREFIX):])
            if e is not None:
                e.holder = ProcRecord.from_dict(r)
        elif kind == "fault-applied" and r.get("name") in open_:
            open_[r["name"]].applied = True
            open_[r["name"]].applied_at = float(r.get("t", 0)) or None
            open_[r["name"]].describe = r.get("describe", "")
        elif kind == "fault-end" and r.get("name") in open_:
            open_.pop(r["name"]).ended = r
    return entries


def faults_of(rundir: RunDir) -> list[FaultEntry]:
    return fold(rundir.records())


def in_force(rundir: RunDir) -> list[FaultEntry]:
    """Faults not undone yet (active, being applied, or orphaned)."""
    return [e for e in faults_of(rundir) if e.ended is None]


def record_fault(rundir: RunDir, name: str, fault: FaultBase, words: str, duration: float | None) -> None:
    rundir.record({"kind": "fault", "name": name, "fault": fault.model_dump(mode="json", by_alias=True),
                   "words": words, "for": duration, "t": time.time()})


def record_applied(rundir: RunDir, name: str, describe: str) -> None:
    rundir.record({"kind": "fault-applied", "name": name, "describe": describe, "t": time.time()})


def record_end(rundir: RunDir, name: str, how: str, detail: str = "") -> None:
    rundir.record({"kind": "fault-end", "name": name, "how": how, "detail": detail, "t": time.time()})
