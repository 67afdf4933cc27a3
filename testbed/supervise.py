"""The lab's supervisor: restarts the services the NetPlan marks ``restart`` when they die, and journals
each restart (``{"kind": "restart", ...}``) so `mhlab inspect` can count them.

One process per lab (``python -m testbed.supervise LAB``), started by deploy once the lab is ready, tagged
and recorded like every other process (destroy stops it first, with the daemons).  It polls: a dead agent
is noticed within ``INTERVAL`` and restarted through the lab's own machinery (``NodeHandle.spawn``, so the
new process is recorded before anything relies on it).  It reads the journal as it grows (``Latest``): a
look parses only what was appended since the last one, so its work and memory do not depend on how long
the lab has been up or how many records deploy wrote.  A service that keeps dying is given up on after
``MAX_RESTARTS`` in ``WINDOW`` seconds (journaled too) rather than restarted in a tight loop.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field

from .lab import Lab, _node_argv
from .procs import ProcRecord, is_alive
from .rundir import JournalTail, RunDir

INTERVAL = 0.5  # seconds between looks: a dead agent is restarted within about this
MAX_RESTARTS, WINDOW = 5, 60.0


def supervised(lab: Lab) -> list[tuple[str, object]]:
    """(node, Process) of every service the NetPlan wants restarted."""
    return [(n.name, p) for n in lab.net.nodes.values() for p in n.services if getattr(p, "restart", False)]


def restarts(rundir: RunDir) -> dict[tuple[str, str], int]:
    """(node, service) -> how many times the supervisor restarted it."""
    out: dict[tuple[str, str], int] = {}
    for r in rundir.records():
        if r.get("kind") == "restart":
            out[(r["node"], r["name"])] = out.get((r["node"], r["name"]), 0) + 1
    return out


@dataclass
class Latest:
    """The newest process record of every (node, name), kept up to date from the journal's new lines."""

    tail: JournalTail
    procs: dict[tuple[str, str], ProcRecord] = field(default_factory=dict)

    @classmethod
    def of(cls, rundir: RunDir) -> "Latest":
        return cls(JournalTail(rundir.journal))

    def update(self) -> dict[tuple[str, str], ProcRecord]:
        for r in self.tail.new():
            if r.get("kind") == "proc":
                rec = ProcRecord.from_dict(r)
                self.procs[(rec.node, rec.name)] = rec
        return self.procs


def look_once(lab: Lab, history: dict[tuple[str, str], list[float]], latest: Latest | None = None) -> None:
    """Restart every supervised service whose newest process is dead (``latest``: the journal read so far,
    updated here; without it, the whole journal is read)."""
    current = (latest or Latest.of(lab.rundir)).update()
    for node, svc in supervised(lab):
        rec = current.get((node, svc.name))
        if rec is None or is_alive(rec):
            continue
        now = time.time()
        recent = [t for t in history.get((node, svc.name), []) if now - t < WINDOW]
        if len(recent) >= MAX_RESTARTS:
            if len(recent) == MAX_RESTARTS:
                lab.rundir.record({"kind": "restart-given-up", "node": node, "name": svc.name, "at": now})
                recent.append(now)
            history[(node, svc.name)] = recent
            continue
        handle = lab.node(node)
        lab.rundir.record({"kind": "restart", "node": node, "name": svc.name, "old_pid": rec.pid, "at": now})
        handle.spawn(svc.name, _node_argv(svc.argv, handle.dir), cwd=handle.dir, env=svc.env)
        history[(node, svc.name)] = recent + [now]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m testbed.supervise", description=__doc__.split("\n\n")[0])
    ap.add_argument("lab")
    ap.add_argument("--run-root")
    args = ap.parse_args(argv)
    lab = Lab.attach(args.lab, args.run_root)
    history: dict[tuple[str, str], list[float]] = {}
    latest = Latest.of(lab.rundir)
    while lab.rundir.path.exists() and lab.rundir.meta().get("status") == "up":
        try:
            look_once(lab, history, latest)
        except Exception as exc:  # a node going away under us during destroy: look again, or end
            print(f"supervisor: {exc}", file=sys.stderr, flush=True)
        time.sleep(INTERVAL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
