"""Host state that labs change together: one host-wide record of who holds a change and what it replaced.

Some knobs a lab may need exist once per host, whatever the run root: the neighbour-table limits
(``testbed.neightable``), kernel same-page merging (``testbed.ksm``).  mhlab changes them only when asked and
undoes them itself.  Each such knob set has one JSON record under :data:`HOST_DIR` with three parts:
``original`` (the values before the first change still held), ``set`` (what mhlab wrote) and ``holders``
(the run directories of the labs that need the change).  The record is read and written under an exclusive
lock, so two labs deploying or destroyed at once see each other.  The last holder out puts back every value
still at what mhlab wrote; one that someone changed meanwhile stays as they set it.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Callable

HOST_DIR = Path("/run/mhlab-host")  # one per host, whatever the run root

Read = Callable[[str], int]
Write = Callable[[str, int], None]


class RecordLock:
    """A host record, read under an exclusive lock (its ``.lock`` file stays) and written back on a clean
    exit: ``with RecordLock(path) as lock: lock.state[...]``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> "RecordLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock = open(self.path.with_suffix(".lock"), "w")
        fcntl.flock(self.lock, fcntl.LOCK_EX)
        try:
            self.state = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.state = {}
        for key in ("original", "set", "holders"):
            self.state.setdefault(key, {})
        return self

    def save(self) -> None:
        """The state on disk (atomically); no holder and nothing to restore: no record."""
        if self.state["holders"] or self.state["original"]:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.state, indent=2) + "\n")
            os.replace(tmp, self.path)
        else:
            self.path.unlink(missing_ok=True)

    def __exit__(self, exc_type, *_exc) -> None:
        try:
            if exc_type is None:
                self.save()
        finally:
            fcntl.flock(self.lock, fcntl.LOCK_UN)
            self.lock.close()


def originals(path: Path) -> dict[str, int]:
    """The values from before a change that is still held (empty: none is)."""
    try:
        return dict(json.loads(path.read_text()).get("original", {}))
    except (OSError, ValueError):
        return {}


def hold(state: dict, holder: str, info: dict, new: dict[str, int], original: dict[str, int]) -> None:
    """``holder`` (a lab's run directory) holds the change; ``new`` is about to be written over ``original``.
    A value's first original stays until the last holder releases."""
    for name, value in new.items():
        state["original"].setdefault(name, original[name])
        state["set"][name] = value
    state["holders"][holder] = info


def release(state: dict, holder: str, read: Read, write: Write) -> dict[str, int]:
    """``holder`` no longer needs the change.  Holders whose run directory is gone (no ``lab.json``) are
    dropped; when none is left, every value still at what mhlab wrote goes back to its original.  Returns
    what was restored."""
    state["holders"].pop(holder, None)
    for other in list(state["holders"]):
        if not (Path(other) / "lab.json").exists():
            state["holders"].pop(other)
    if state["holders"]:
        return {}
    restored = {}
    for name, old in state["original"].items():
        if read(name) == state["set"].get(name):
            write(name, old)
            restored[name] = old
    state["original"], state["set"] = {}, {}
    return restored
