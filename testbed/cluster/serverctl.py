"""What a server runs for a lab, over ssh: ``python -m testbed.cluster.serverctl VERB ...`` (as root).

- ``relay``: start a process in a node (``mnexec -a PID``) and stay beside it: when the ssh session that
  started the relay ends (the deploying side's proxy process was stopped, or died), the process is sent
  SIGTERM, then SIGKILL.  The process carries the lab's tag and a token of its own, so it is found again.
- ``find``: the pid and start time of the process with a token, once it has entered its node.
- ``signal``: send a signal to the process with a token (a scenario stopping its flows gracefully).
- ``sweep``: stop every process of a lab on this server and delete the VXLAN devices it recorded that are
  still in this namespace (one that was moved into a node went with the node).  Prints what it did.
- ``underlay``: the device and MTU this server reaches another server's underlay address through.

Only the standard library and :mod:`testbed.procs`: the server needs mhlab installed, not a lab.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import subprocess
import sys
import time

from ..procs import start_time, stop_all, tagged_pids

TOKEN = "MHLAB_RELAY"


def _netns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


def relay(pid: int, argv: list[str], env: list[str], cwd: str | None) -> int:
    extra = dict(kv.split("=", 1) for kv in env)
    child = subprocess.Popen(["mnexec", "-a", str(pid), *argv], stdin=subprocess.DEVNULL, cwd=cwd,
                             env={**os.environ, **extra})
    stopping = {"at": None}

    def stop(*_):
        if stopping["at"] is None and child.poll() is None:
            stopping["at"] = time.monotonic()
            child.terminate()

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, stop)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    poller = select.poll()
    poller.register(1, select.POLLERR | select.POLLHUP)  # our ssh session's stdout: gone = stop the child
    while child.poll() is None:
        if poller.poll(200):
            stop()
        if stopping["at"] is not None and time.monotonic() - stopping["at"] > 5:
            child.kill()
        try:
            child.wait(0 if stopping["at"] is None else 0.2)
        except subprocess.TimeoutExpired:
            pass
    rc = child.returncode
    return 128 - rc if rc < 0 else rc


def _with_token(token: str) -> list[int]:
    want = f"{TOKEN}={token}".encode()
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if want in open(f"/proc/{entry.name}/environ", "rb").read().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _the_child(token: str) -> int | None:
    """The relayed process itself (mnexec execs it): of those with the token, the one whose parent (the
    relay) has none - its own children inherit the token."""
    pids = _with_token(token)
    for pid in pids:
        try:
            ppid = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid not in pids:
            return pid
    return None


def find(token: str, node_pid: int | None, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    target = _netns(node_pid) if node_pid else None
    while time.monotonic() < deadline:
        pid = _the_child(token)
        if pid is not None and (target is None or _netns(pid) == target):
            print(json.dumps({"pid": pid, "start": start_time(pid)}))
            return 0
        time.sleep(0.01)
    print(json.dumps({"error": f"no process with token {token} (in node {node_pid}) within {timeout} s"}))
    return 1


def send(token: str, sig: int) -> int:
    pid = _the_child(token)
    if pid is None:
        return 1
    os.kill(pid, sig)
    return 0


def sweep(lab: str, vxlans: list[str]) -> int:
    deleted = []
    for item in vxlans:
        dev, _, vni = item.partition(":")
        out = subprocess.run(["ip", "-d", "-j", "link", "show", "dev", dev], capture_output=True, text=True)
        if out.returncode != 0:
            continue  # not here: it was moved into a node (and went with it), or never made
        info = (json.loads(out.stdout or "[]") or [{}])[0].get("linkinfo", {})
        if info.get("info_kind") == "vxlan" and str(info.get("info_data", {}).get("id")) == vni:
            subprocess.run(["ip", "link", "del", "dev", dev], check=False)
            deleted.append(dev)
    me = {os.getpid(), os.getppid()}
    targets = {p: s for p, s in tagged_pids(lab).items() if p not in me}
    left = stop_all(targets)
    print(json.dumps({"processes": len(targets), "vxlan": deleted, "left": left}))
    return 0 if not left else 1


def underlay(to: str) -> int:
    route = json.loads(subprocess.run(["ip", "-j", "route", "get", to], capture_output=True, text=True,
                                      check=True).stdout)[0]
    link = json.loads(subprocess.run(["ip", "-j", "link", "show", "dev", route["dev"]], capture_output=True,
                                     text=True, check=True).stdout)[0]
    print(json.dumps({"dev": route["dev"], "mtu": link["mtu"], "src": route.get("prefsrc")}))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="serverctl", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="verb", required=True)
    r = sub.add_parser("relay")
    r.add_argument("--pid", type=int, required=True, help="a process inside the node (its anchor or shell)")
    r.add_argument("--env", action="append", default=[], metavar="K=V")
    r.add_argument("--cwd")
    r.add_argument("argv", nargs=argparse.REMAINDER)
    f = sub.add_parser("find")
    f.add_argument("--token", required=True)
    f.add_argument("--node-pid", type=int)
    f.add_argument("--timeout", type=float, default=10)
    s = sub.add_parser("signal")
    s.add_argument("--token", required=True)
    s.add_argument("--sig", type=int, default=signal.SIGTERM)
    w = sub.add_parser("sweep")
    w.add_argument("--lab", required=True)
    w.add_argument("--vxlan", action="append", default=[], metavar="DEV:VNI")
    u = sub.add_parser("underlay")
    u.add_argument("--to", required=True)
    a = p.parse_args(argv)
    if a.verb == "relay":
        return relay(a.pid, a.argv[1:] if a.argv[:1] == ["--"] else a.argv, a.env, a.cwd)
    if a.verb == "find":
        return find(a.token, a.node_pid, a.timeout)
    if a.verb == "signal":
        return send(a.token, a.sig)
    if a.verb == "sweep":
        return sweep(a.lab, a.vxlan)
    return underlay(a.to)


if __name__ == "__main__":
    sys.exit(main())
