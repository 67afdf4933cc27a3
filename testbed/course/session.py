"""A student's lab for an exercise: its name, start (deploy + the exercise's breakage), reset, solution.

Lab names follow the 10-character rule: a prefix, the exercise number, the student's name (letters and
digits), shortened with a 3-character digest when too long, so two students never get the same name.
The lab records its owner, so one student's ``mhlab destroy --all`` spares another's labs.
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..faults import prepare
from ..lab import Lab, destroy
from ..owners import caller, set_owner
from ..rundir import RunDir
from ..scenario.model import DaemonKill
from .catalog import Exercise, course_dir
from .model import Command

DEFAULT_PREFIX = "x"
_DIR = re.compile(r"\{dir:([A-Za-z0-9_-]+)\}")
_ADDR = re.compile(r"\{addr:([A-Za-z0-9_-]+)(?::([A-Za-z0-9_-]+))?\}")


def student_name(explicit: str | None = None) -> str:
    name = explicit or caller()
    if not re.search(r"[A-Za-z0-9]", name):
        raise UsageError(f"--student {name!r}: a student name needs letters or digits")
    return name


def lab_name(ex: Exercise | int, student: str, prefix: str = DEFAULT_PREFIX) -> str:
    """``x03alice``; a long name becomes ``x03alic9f2`` (digest of the whole name: no collisions)."""
    number = ex if isinstance(ex, int) else ex.number
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]{0,5}", prefix):
        raise UsageError(f"--prefix {prefix!r}: a letter then up to 5 letters or digits")
    head = f"{prefix}{number:02d}"
    clean = re.sub(r"[^a-z0-9]", "", student.lower())
    room = 10 - len(head)
    if len(clean) > room or clean != student:
        clean = clean[:room - 3] + hashlib.sha1(student.encode()).hexdigest()[:3]
    return head + clean


def expand(lab: Any, text: str) -> str:
    """``{addr:h1:ispb}`` -> h1's address from ISP B; ``{addr:srv}`` -> srv's address; ``{dir:hB}`` -> hB's
    folder (its configs and sockets, reachable from every node); the course folder is ``$MHLAB_COURSE``.
    The command runs in ``sh`` with mhlab's own tools (shimctl, its Python) first on PATH."""
    return f'export PATH="{Path(sys.executable).parent}:$PATH" MHLAB_COURSE="{course_dir()}"; {substitute(lab, text)}'


def substitute(lab: Any, text: str) -> str:
    """Only the ``{addr:...}`` and ``{dir:...}`` references (for patterns as well as commands)."""
    text = _ADDR.sub(lambda m: lab.net.plan.address(m.group(1), m.group(2)), text)
    return _DIR.sub(lambda m: str(lab.node(m.group(1)).dir), text)



def run_commands(lab: Lab, commands: list[Command]) -> list[str]:
    """Run each command in its node; returns the failures (command and its stderr)."""
    failures = []
    for c in commands:
        if c.restart:
            action = prepare(DaemonKill(kind="daemon-kill", node=c.node, daemon=c.restart, at=0), lab)
            action.do()
            action.revert()  # the restart removes the stale control socket the killed daemon left
        if not c.run:
            continue
        res = lab.node(c.node).run(expand(lab, c.run), timeout=60)
        if res.returncode != 0:
            failures.append(f"{c.node}: {c.run}: exit {res.returncode}: {res.stderr.strip()[-300:]}")
    return failures


def start(ex: Exercise, student: str, prefix: str = DEFAULT_PREFIX, root: str | Path | None = None,
          progress=lambda _m: None) -> Lab:
    name = lab_name(ex, student, prefix)
    if RunDir.of(name, root).exists():
        raise UsageError(f"{student} already has exercise {ex.number} running as lab {name}: "
                         f"`mhlab exercise reset {ex.number}` starts it again from scratch")
    lab = Lab.deploy(ex.lab_file, name=name, root=root, progress=progress)
    set_owner(lab.rundir, student)
    lab.rundir.update_meta(exercise=ex.number)
    failures = run_commands(lab, ex.spec.setup)
    if failures:
        lab.destroy()
        raise UsageError(f"exercise {ex.number}: its setup failed: " + "; ".join(failures))
    return lab


def attach(ex: Exercise, student: str, prefix: str = DEFAULT_PREFIX, root: str | Path | None = None) -> Lab:
    name = lab_name(ex, student, prefix)
    if not RunDir.of(name, root).exists():
        raise UsageError(f"{student} has no lab for exercise {ex.number} (expected {name}): "
                         f"`sudo mhlab exercise start {ex.number}` first")
    return Lab.attach(name, root)


def reset(ex: Exercise, student: str, prefix: str = DEFAULT_PREFIX, root: str | Path | None = None,
          progress=lambda _m: None) -> Lab:
    name = lab_name(ex, student, prefix)
    if RunDir.of(name, root).exists():
        destroy(name, root, progress)
    return start(ex, student, prefix, root, progress)


def apply_solution(ex: Exercise, lab: Lab) -> dict[str, str]:
    """Apply the reference solution's commands to the running lab; return its answers."""
    sol = ex.solution()
    failures = run_commands(lab, sol.commands)
    if failures:
        raise UsageError(f"exercise {ex.number}: the reference solution failed: " + "; ".join(failures))
    return dict(sol.answers)
