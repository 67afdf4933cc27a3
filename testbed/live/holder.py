"""The process that holds one fault of a running lab: it applies the fault, waits, and undoes it.

A fault's Action may keep state between its ``do()`` and its ``revert()`` (the daemons a crash killed, a flap's
loop), and ``--for`` needs something that wakes up later: so every undoable fault applied by hand lives in a
holder of its own, tagged with the lab and recorded in the journal as ``fault:NAME``.  SIGTERM (``mhlab
restore``) or the end of ``--for`` undoes the fault; while the lab is being destroyed it only exits.

    python -m testbed.live.holder --lab NAME --fault FAULT_NAME [--run-root DIR]

It reads its fault from the journal, prints one line (``applied: ...`` or ``error: ...``) and closes stdout.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from ..faults import prepare
from ..lab import Lab
from .faultlog import in_force, record_applied, record_end

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _say(line: str) -> None:
    print(line, flush=True)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # the caller stops reading after the first line
    os.close(devnull)


def hold(lab: Lab, name: str) -> int:
    entry = next((e for e in in_force(lab.rundir) if e.name == name), None)
    if entry is None:
        _say(f"error: no fault {name!r} waiting in the journal of lab {lab.name}")
        return 1
    action = None
    try:
        action = prepare(entry.model(), lab)
        action.do()
    except Exception as exc:  # noqa: BLE001 - reported to the caller, the half-applied part undone
        if action is not None and action.undo is not None:
            try:
                action.undo()
            except Exception:  # noqa: BLE001
                pass
        record_end(lab.rundir, name, "failed", str(exc))
        _say(f"error: {exc}")
        return 1
    record_applied(lab.rundir, name, action.describe)
    _say(f"applied: {action.describe}")
    timeout = entry.duration  # --for counts from now, when the fault is in force
    got = signal.sigtimedwait(STOP_SIGNALS, timeout) if timeout is not None else signal.sigwaitinfo(STOP_SIGNALS)
    if lab.rundir.meta().get("status") == "destroying":
        return 0  # the lab goes away with its fault; nothing to undo
    try:
        action.revert()
    except Exception as exc:  # noqa: BLE001
        record_end(lab.rundir, name, "undo-failed", str(exc))
        return 1
    record_end(lab.rundir, name, "restored" if got is not None else "expired")
    return 0


def main(argv: list[str] | None = None) -> int:
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)  # a restore during do() waits for do() to finish
    p = argparse.ArgumentParser(prog="python -m testbed.live.holder", description=__doc__)
    p.add_argument("--lab", required=True)
    p.add_argument("--fault", required=True)
    p.add_argument("--run-root")
    args = p.parse_args(argv)
    try:
        lab = Lab.attach(args.lab, args.run_root)
    except Exception as exc:  # noqa: BLE001
        _say(f"error: {exc}")
        return 1
    return hold(lab, args.fault)


if __name__ == "__main__":
    sys.exit(main())
