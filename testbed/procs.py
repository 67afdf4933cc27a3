"""Processes the lab starts: identified by PID *and* kernel start time, tagged with the lab's name.

A PID alone can be reused after a crash; the start time (field 22 of /proc/PID/stat) makes a record name
exactly one process.  Every process also carries ``MHLAB_LAB=<lab>`` in its environment (as munet does), so
``destroy`` finds children a daemon forked even if they were never recorded, and ``MHLAB_LAB_DIR=<run
directory>``: two labs of one name in two run roots (parallel test workers, ``--run-root``) never take each
other's processes for their own.  Nothing is ever killed by name.
"""

from __future__ import annotations

import os
import signal
from dataclasses import asdict, dataclass
from pathlib import Path

from .wait import WaitTimeout, wait_until

TAG = "MHLAB_LAB"
DIR_TAG = "MHLAB_LAB_DIR"


@dataclass(frozen=True)
class ProcRecord:
    """One process of a lab: a node's anchor, a daemon, a service or an agent."""

    node: str
    name: str
    pid: int
    start: int
    argv: tuple[str, ...] = ()
    # a process on another server of a cluster lab: ``pid``/``start`` are its local ssh proxy (stopping it
    # stops the process), ``rpid`` its pid on that server (0 when not needed)
    server: str = ""
    rpid: int = 0

    def as_dict(self) -> dict:
        return {"kind": "proc", **asdict(self), "argv": list(self.argv)}

    @classmethod
    def from_dict(cls, d: dict) -> "ProcRecord":
        return cls(d["node"], d["name"], int(d["pid"]), int(d["start"]), tuple(d.get("argv", ())),
                   d.get("server", ""), int(d.get("rpid", 0)))


def start_time(pid: int) -> int | None:
    """The kernel's start time of ``pid`` in clock ticks, or None when no such process exists."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may contain spaces and parentheses: split after the last ')'
    return int(stat[stat.rindex(")") + 2:].split()[19])


def cpu_seconds(pid: int) -> float:
    """CPU seconds (utime + stime) ``pid`` has used, 0.0 when no such process exists: what benchmarks read of
    a daemon's cost."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def is_alive(rec: ProcRecord) -> bool:
    """True only if the very process recorded still runs (same PID and same start time), not a zombie."""
    if start_time(rec.pid) != rec.start:
        return False
    try:
        state = Path(f"/proc/{rec.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def tagged_pids(lab: str, lab_dir: str | Path | None = None) -> dict[int, int]:
    """PID -> start time of every process whose environment says it belongs to ``lab`` - and, given
    ``lab_dir``, to the lab of that run directory: a process tagged with another lab directory is another
    lab of the same name (one without a directory tag still counts: it can only be this lab's or older)."""
    want = f"{TAG}={lab}".encode()
    prefix, mine = f"{DIR_TAG}=".encode(), f"{DIR_TAG}={lab_dir}".encode()
    found: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            env = Path(entry.path, "environ").read_bytes()
        except OSError:
            continue
        entries = env.split(b"\0")
        if want in entries and (lab_dir is None or mine in entries
                                or not any(e.startswith(prefix) for e in entries)):
            st = start_time(int(entry.name))
            if st is not None:
                found[int(entry.name)] = st
    return found


def signal_exact(pid: int, start: int, sig: int) -> bool:
    """Send ``sig`` to ``pid`` only if it is still the process that started at ``start``."""
    if start_time(pid) != start:
        return False
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def stop_all(targets: dict[int, int], grace: float = 2.0) -> list[int]:
    """SIGTERM each exact process, wait up to ``grace`` seconds, SIGKILL what is left; returns survivors."""
    for pid, start in targets.items():
        signal_exact(pid, start, signal.SIGTERM)
    left = _wait_gone(dict(targets), grace)
    for pid, start in left.items():
        signal_exact(pid, start, signal.SIGKILL)
    return list(_wait_gone(left, 2.0))


def _wait_gone(targets: dict[int, int], timeout: float) -> dict[int, int]:
    """Wait until none of ``targets`` runs any more; returns those still running after ``timeout``."""
    if not targets:
        return {}
    try:
        return wait_until(lambda: {p: s for p, s in targets.items() if _running(p, s)}, timeout, 0.02,
                          ok=lambda left: not left, what="processes stopping")
    except WaitTimeout as exc:
        return exc.last


def _running(pid: int, start: int) -> bool:
    _reap(pid)
    return is_alive(ProcRecord("", "", pid, start))


def _reap(pid: int) -> None:
    """Collect our own exited children so they do not linger as zombies."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
