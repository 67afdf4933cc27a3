"""Apply and undo faults on a running lab by hand: what `mhlab fault/faults/restore` and the web page call.

An undoable fault (link-down, loss, flap, daemon-kill...) is validated here with ``testbed.faults.prepare``,
recorded in the journal, and handed to a holder process (testbed.live.holder) that applies it and later
undoes it.  A one-shot fault (bgp-reset, link-up) is simply done.  ``restore`` asks the holder to undo; if
the holder is gone (killed), it re-creates the Action from the recorded fault model and reverts that.
"""

from __future__ import annotations

import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import MhlabError
from ..faults import prepare
from ..lab import Lab
from ..node import tagged_env
from ..procs import ProcRecord, signal_exact, start_time
from ..scenario.model import FaultBase
from .faultlog import HOLDER_PREFIX, FaultEntry, faults_of, in_force, record_end, record_fault
from .faultspec import default_name, target_of

APPLY_TIMEOUT = 60.0  # a router restart or a slow vtysh can take a while
RESTORE_TIMEOUT = 30.0


@dataclass(frozen=True)
class Applied:
    name: str
    describe: str
    held: bool  # False for one-shot faults (nothing to restore)


def apply_fault(lab: Lab, fault: FaultBase, words: str = "", duration: float | None = None) -> Applied:
    """Apply ``fault`` now; an undoable one stays in force (recorded) until restored or ``duration`` ends.
    Raises FaultError (bad reference) before anything changes, MhlabError when applying failed."""
    entries = in_force(lab.rundir)
    same = next((e for e in entries if _essence(e.fault) == _essence(fault.model_dump(mode="json", by_alias=True))), None)
    if same is not None:
        raise MhlabError(f"the same fault is already in force on lab {lab.name} as {same.name!r} "
                         f"(mhlab restore {lab.name} {same.name})")
    taken = {e.name for e in entries}
    name = fault.name or default_name(fault, taken)
    if name in taken:
        raise MhlabError(f"a fault named {name!r} is already in force on lab {lab.name} (mhlab faults {lab.name})")
    fault = fault.model_copy(update={"name": name})
    action = prepare(fault, lab)  # every reference checked before anything changes
    if not fault.undoable:
        action.do()
        return Applied(name, action.describe, False)
    record_fault(lab.rundir, name, fault, words, duration)
    argv = [sys.executable, "-m", "testbed.live.holder", "--lab", lab.name, "--fault", name,
            "--run-root", str(lab.rundir.path.parent)]
    log = holder_log(lab)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as err:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, cwd="/",
                                env=tagged_env(lab.rundir), start_new_session=True)
    lab.rundir.record(ProcRecord("", HOLDER_PREFIX + name, proc.pid, start_time(proc.pid) or 0,
                                 tuple(argv)).as_dict())
    line = _first_line(proc, APPLY_TIMEOUT)
    proc.stdout.close()
    if not line.startswith("applied: "):
        if proc.poll() is None:  # still busy: it undoes what it did as soon as it sees the signal
            signal_exact(proc.pid, start_time(proc.pid) or 0, signal.SIGTERM)
            raise MhlabError(f"fault {name}: its holder did not report within {APPLY_TIMEOUT:.0f} s (told to give "
                             f"up); see {log}")
        _close_if_open(lab, name, "failed", line)
        raise MhlabError(f"fault {name}: " + (line.removeprefix("error: ") or f"its holder failed (see {log})"))
    return Applied(name, line.removeprefix("applied: "), True)


def _essence(fault: dict) -> dict:
    """What a fault does, without its name and timing: two faults alike in this are the same fault."""
    return {k: v for k, v in fault.items() if k not in ("name", "at", "until")}


def _first_line(proc: subprocess.Popen, timeout: float) -> str:
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    data = b""
    while b"\n" not in data and time.monotonic() < deadline:
        if not sel.select(max(0.0, deadline - time.monotonic())):
            break
        chunk = proc.stdout.read1(4096)
        if not chunk:
            break
        data += chunk
    sel.close()
    return data.decode(errors="replace").split("\n", 1)[0].strip()


def _close_if_open(lab: Lab, name: str, how: str, detail: str) -> None:
    if any(e.name == name for e in in_force(lab.rundir)):
        record_end(lab.rundir, name, how, detail)


def select(lab: Lab, which: str | None) -> list[FaultEntry]:
    """Faults in force named ``which`` (or acting on it: ``ispa-ra``), all of them for None."""
    entries = in_force(lab.rundir)
    if which is None:
        return entries
    named = [e for e in entries if e.name == which]
    if named:
        return named
    targeted = [e for e in entries if which == target_of(e.model()) or which in e.words.split()[1:2]]
    if targeted:
        return targeted
    known = ", ".join(e.name for e in entries) or "none"
    raise MhlabError(f"no fault {which!r} in force on lab {lab.name} (in force: {known})")


def restore(lab: Lab, entry: FaultEntry, timeout: float = RESTORE_TIMEOUT) -> str:
    """Undo one fault; returns how (``restored`` by its holder, or ``re-created`` when the holder was gone)."""
    holder = entry.holder
    if holder is not None and signal_exact(holder.pid, holder.start, signal.SIGTERM):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not any(e.name == entry.name for e in in_force(lab.rundir)):
                ended = next(e for e in reversed(faults_of(lab.rundir)) if e.name == entry.name).ended or {}
                if ended.get("how") not in ("restored", "expired"):
                    raise MhlabError(f"fault {entry.name}: undo failed: {ended.get('detail', '')}")
                return str(ended.get("how"))
            if not entry.holder_alive():
                break  # died without recording its undo: do it from here
            time.sleep(0.05)
        else:
            raise MhlabError(f"fault {entry.name}: its holder (pid {holder.pid}) did not undo it within {timeout:.0f} s")
    action = prepare(entry.model(), lab)
    action.applied = True  # it was applied by the holder that is gone; its undo is the same
    action.revert()
    detail = "its holder was gone; undone by re-creating the fault from the journal"
    if entry.kind in ("daemon-kill", "router-crash"):
        detail += " (the daemons it killed are not known here: restart them or redeploy)"
    record_end(lab.rundir, entry.name, "re-created", detail)
    return "re-created"


def holder_log(lab: Lab) -> Path:
    return lab.rundir.path / "live" / "holders.log"
