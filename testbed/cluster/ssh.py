"""Commands on a server and inside its nodes, over ssh; processes there stand behind a local proxy.

Every remote command gets the lab's tag (and this machine's PATH: mhlab lives at the same path on every
server) in its environment, so the server's own sweep finds it.  A long-running process in a remote node
is started by :mod:`.serverctl`'s ``relay`` through an ssh client that is a local process: the journal
records that client (a local pid with a start time, as for any process), and stopping it - by destroy, a
crash fault or the supervisor's liveness check - stops the remote process, because the relay stops its
child when its ssh session ends.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ..procs import TAG
from .model import Server

MODULE = "testbed.cluster.serverctl"
SSH_OPTIONS = ["-q", "-o", "BatchMode=yes", "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3"]


@dataclass(frozen=True)
class Remote:
    """One server as one lab uses it."""

    name: str
    server: Server
    lab: str
    control_dir: str | None = None  # where the shared ssh connection's socket lives (the lab's run folder)

    def ssh_options(self, master: bool = False) -> list[str]:
        """One ssh connection per server and lab, shared by every command (a new one costs about a second on
        a loaded machine): :meth:`master` opens it; without it, a command connects on its own."""
        if not self.control_dir:
            return list(SSH_OPTIONS)
        return [*SSH_OPTIONS, "-o", f"ControlMaster={'yes' if master else 'no'}",
                "-o", f"ControlPath={self.control_dir}/ssh-{self.name}"]

    def master(self) -> subprocess.Popen:
        """The shared connection's master, a local process to record (ssh retitles itself over its
        environment, so it could not be found by the lab's tag).  Returns once it accepts sessions."""
        assert self.control_dir
        errors = Path(self.control_dir) / f"ssh-{self.name}.err"
        with open(errors, "ab") as err:
            proc = subprocess.Popen([*self.server.ssh, *self.ssh_options(master=True), "-N", self.server.dest],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                    start_new_session=True, env=self.env())
        check = [*self.server.ssh, *self.ssh_options(), "-O", "check", self.server.dest]
        deadline = time.monotonic() + 30
        while subprocess.run(check, capture_output=True, stdin=subprocess.DEVNULL).returncode != 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                err = errors.read_text(errors="replace").strip()
                raise RuntimeError(f"server {self.name}: ssh to {self.server.dest} failed: {err[-300:] or 'timeout'}")
            time.sleep(0.05)
        return proc

    def env(self) -> dict[str, str]:
        return {**os.environ, TAG: self.lab}

    def argv(self, command: list[str], tty: bool = False, env: dict[str, str] | None = None) -> list[str]:
        """The local argv that runs ``command`` on the server (as root, tagged with the lab)."""
        tagged = ["env", f"{TAG}={self.lab}", f"PATH={os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}",
                  *(f"{k}={v}" for k, v in (env or {}).items()), *command]
        if self.server.sudo:
            tagged = ["sudo", "-n", *tagged]
        return [*self.server.ssh, *self.ssh_options(), "-tt" if tty else "-T", self.server.dest, shlex.join(tagged)]

    def serverctl(self, *args: str) -> list[str]:
        return [self.server.python, "-m", MODULE, *args]

    def run(self, command: list[str], timeout: float | None = 30, input: str | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(command, env=env), capture_output=True, text=True, timeout=timeout,
                              input=input, stdin=None if input else subprocess.DEVNULL, env=self.env())

    def relay(self, node_pid: int, argv: list[str], env: dict[str, str], cwd: str | None = None,
              stdout=None, stderr=None) -> "RemotePopen":
        """Start ``argv`` in the node holding ``node_pid``; returns the local proxy (an ssh client)."""
        token = secrets.token_hex(8)
        cmd = self.serverctl("relay", "--pid", str(node_pid), *(f"--env={k}={v}" for k, v in
                                                                 {**env, "MHLAB_RELAY": token}.items()),
                             *(["--cwd", cwd] if cwd else []), "--", *argv)
        proc = RemotePopen(self.argv(cmd), stdin=subprocess.DEVNULL,
                           stdout=stdout if stdout is not None else subprocess.DEVNULL,
                           stderr=stderr if stderr is not None else subprocess.STDOUT,
                           start_new_session=True, env=self.env())
        proc.remote, proc.token = self, token
        return proc


class RemotePopen(subprocess.Popen):
    """The local ssh client of a relayed process: signals go to the remote process itself (a flow's agent
    flushes its log on SIGTERM before the client returns); SIGKILL also ends the client."""

    remote: Remote
    token: str

    def send_signal(self, sig: int) -> None:
        if self.poll() is not None:
            return
        try:
            self.remote.run(self.remote.serverctl("signal", "--token", self.token, "--sig", str(int(sig))),
                            timeout=10)
        except subprocess.TimeoutExpired:
            pass
        if sig == signal.SIGKILL:
            super().send_signal(sig)

    def locate(self, node_pid: int | None = None, timeout: float = 10) -> tuple[int, int]:
        """(pid, start time) of the relayed process on its server, once it is inside its node."""
        args = ["find", "--token", self.token, "--timeout", str(timeout)]
        res = self.remote.run(self.remote.serverctl(*args, *(["--node-pid", str(node_pid)] if node_pid else [])),
                              timeout=timeout + 15)
        try:
            found = json_line(res.stdout)
        except ValueError:
            found = {"error": (res.stderr or res.stdout).strip()[-300:]}
        if "pid" not in found:
            raise RuntimeError(f"server {self.remote.name}: {found.get('error')}")
        return int(found["pid"]), int(found["start"] or 0)


def json_line(text: str) -> dict:
    """The last JSON object a serverctl verb printed."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError(f"no JSON in {text[-200:]!r}")
