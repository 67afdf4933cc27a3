"""Running a command inside a lab node, from the deploying process or any later one (CLI, tests).

A node is a network + mount namespace held open by an *anchor* process; commands enter it with Mininet's
``mnexec -a PID``.  Every long-running process started here is tagged with the lab's name and recorded in the
journal before anything relies on it.  Every command also gets ``MHLAB_NODE_DIR`` (the node's run folder,
where its sockets live), so tools inside a node find that node's daemons without flags (``shimctl``).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .errors import LabError
from .cluster.ssh import Remote
from .procs import DIR_TAG, TAG, ProcRecord, is_alive, start_time
from .rundir import RunDir

NODE_DIR_ENV = "MHLAB_NODE_DIR"


def tagged_env(rundir: RunDir, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a lab's processes: its tags (name and run directory), and this Python's scripts
    (``shimctl``, ``exitpathctl``) first on the PATH, so they work in a node whether or not the venv is
    activated."""
    scripts = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    env = {**os.environ, TAG: rundir.lab, DIR_TAG: str(rundir.path), "PATH": path if scripts in path.split(":") else f"{scripts}:{path}",
           **(extra or {})}
    env.pop("PYTEST_CURRENT_TEST", None)
    return env


@dataclass(frozen=True)
class NodeHandle:
    """One node of a running lab: run commands in it, start recorded processes in it."""

    name: str
    anchor: ProcRecord
    rundir: RunDir
    remote: Remote | None = None  # the node runs on another server (a cluster lab)

    @property
    def lab(self) -> str:
        return self.rundir.lab

    @property
    def pid(self) -> int:
        """The anchor's pid where the node runs (on its server for a cluster lab)."""
        return self.anchor.rpid if self.remote else self.anchor.pid

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The environment of anything run in this node: the lab's tag and the node's folder."""
        return tagged_env(self.rundir, {NODE_DIR_ENV: str(self.dir), **(extra or {})})

    def _enter(self, argv: list[str], detach: bool = False) -> list[str]:
        if not is_alive(self.anchor):
            raise LabError(f"node {self.name} of lab {self.lab} is not running (its anchor process is gone)")
        return ["mnexec", "-da" if detach else "-a", str(self.pid), *argv]

    def command(self, argv: list[str], tty: bool = False) -> list[str]:
        """The local argv that runs ``argv`` in the node (over ssh on its server for a cluster lab); run it
        with :meth:`env`."""
        if self.remote is None:
            return self._enter(argv)
        if not is_alive(self.anchor):
            raise LabError(f"node {self.name} of lab {self.lab} is not running (its anchor's proxy is gone)")
        return self.remote.argv(["mnexec", "-a", str(self.pid), *argv], tty=tty, env={NODE_DIR_ENV: str(self.dir)})

    def run(self, argv: list[str] | str, timeout: float | None = 30, check: bool = False,
            input: str | None = None) -> subprocess.CompletedProcess:
        """Run to completion inside the node; a string is run by ``sh -c``."""
        if isinstance(argv, str):
            argv = ["sh", "-c", argv]
        try:
            res = subprocess.run(self.command(argv), capture_output=True, text=True, timeout=timeout,
                                 input=input, env=self.env(), stdin=None if input else subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise LabError(f"{self.name}: `{shlex.join(argv)}` did not finish within {timeout} s") from None
        if check and res.returncode != 0:
            raise LabError(f"{self.name}: `{shlex.join(argv)}` failed ({res.returncode}): "
                           f"{(res.stderr or res.stdout).strip()[:500]}")
        return res

    def cmd(self, command: str, timeout: float | None = 30) -> str:
        """Mininet-style: a shell command line, returns stdout and stderr together."""
        res = self.run(command, timeout=timeout)
        return res.stdout + res.stderr

    def popen(self, argv: list[str], name: str | None = None, stdout: int | IO | None = None,
              stderr: int | IO | None = None, env: dict[str, str] | None = None,
              cwd: str | Path | None = None) -> subprocess.Popen:
        """Start a long-running process in the node; it is recorded so ``destroy`` stops exactly it."""
        if self.remote is not None:
            return self._popen_remote(argv, name, stdout, stderr, env, cwd)
        proc = subprocess.Popen(self._enter(argv, detach=True), stdin=subprocess.DEVNULL,
                                stdout=stdout if stdout is not None else subprocess.DEVNULL,
                                stderr=stderr if stderr is not None else subprocess.STDOUT,
                                env=self.env(env), cwd=cwd)
        st = start_time(proc.pid)
        if st is not None:
            self.rundir.record(ProcRecord(self.name, name or Path(argv[0]).name, proc.pid, st,
                                          tuple(argv)).as_dict())
        return proc

    def _popen_remote(self, argv, name, stdout, stderr, env, cwd) -> subprocess.Popen:
        """A relayed process on the node's server; the journal records its local proxy (see ``cluster.ssh``)."""
        if not is_alive(self.anchor):
            raise LabError(f"node {self.name} of lab {self.lab} is not running (its anchor's proxy is gone)")
        assert self.remote is not None
        proc = self.remote.relay(self.pid, argv, {NODE_DIR_ENV: str(self.dir), **(env or {})},
                                 cwd=str(cwd) if cwd else None, stdout=stdout, stderr=stderr)
        st = start_time(proc.pid)
        if st is not None:
            self.rundir.record(ProcRecord(self.name, name or Path(argv[0]).name, proc.pid, st, tuple(argv),
                                          server=self.remote.name).as_dict())
        return proc

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None,
              cwd: str | Path | None = None) -> subprocess.Popen:
        """A daemon: output to ``<node dir>/<name>.out``."""
        log = self.dir / f"{name}.out"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            return self.popen(argv, name=name, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)

    @property
    def dir(self) -> Path:
        return self.rundir.path / "nodes" / self.name.replace(":", "_")

    def processes(self) -> list[tuple[ProcRecord, bool]]:
        """Every recorded process of this node with whether it still runs."""
        return [(p, is_alive(p)) for p in self.rundir.procs() if p.node == self.name and p.name != "anchor"]
