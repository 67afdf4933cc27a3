"""The exit path agent: runs in one host's network namespace and drives the cache engine.

I/O only: the kernel path (tc programs, maps, route hints, RSTs) is polled every ``--poll``
seconds for races started and packets received, which feed the engine; the engine's actions
are carried out on the kernel; a unix socket answers ``exitpathctl``.  Everything that decides
is ``engine``.

Run (inside the host)::

    python -m agents.exitpath.daemon --socket /run/h1-exitpath.sock \\
        --source 2001:db8:a001:1::10 --source 2001:db8:b001:1::10 [--device lan]

It prints one JSON line when ready (and creates the socket), then logs events as JSON lines.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import random
import selectors
import signal
import socket
import sys
import time
from typing import TextIO

from ..jsonctl import ControlServer
from . import control
from .datapath import DEFAULT_MARK, KernelPath
from .engine import Action, Decide, Event, ExitPathCache, Program, Timing, Withdraw

Address = ipaddress.IPv6Address
FLOW_SWEEP = 10.0  # seconds between sweeps of idle flows
DEPRECATION_CHECK = 0.05  # seconds between looks at which of our sources are deprecated
IFA_F_DEPRECATED = 0x20


def deprecated_addresses(path: str = "/proc/net/if_inet6") -> set[ipaddress.IPv6Address]:
    """This namespace's IPv6 addresses whose kernel flags say deprecated (preferred lifetime over)."""
    out = set()
    try:
        lines = open(path).read().splitlines()
    except OSError:
        return out
    for line in lines:
        fields = line.split()
        if len(fields) >= 6 and int(fields[4], 16) & IFA_F_DEPRECATED:
            out.add(ipaddress.IPv6Address(int(fields[0], 16)))
    return out


class ExitPathDaemon:
    def __init__(self, engine: ExitPathCache, kernel: KernelPath, socket_path: str, log: TextIO,
                 poll: float = 0.02, flow_idle: float = 600.0) -> None:
        self.engine, self.kernel, self.log = engine, kernel, log
        self.poll_interval, self.flow_idle = poll, flow_idle
        self.socket_path = socket_path
        self.selector = selectors.DefaultSelector()
        self.running = True
        self.next_sweep = time.monotonic() + FLOW_SWEEP
        self.next_dep_check = 0.0
        self.deprecated: set[ipaddress.IPv6Address] = set()
        self.kernel.start()
        try:
            if os.path.exists(socket_path):
                os.unlink(socket_path)
            self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.server.bind(socket_path)
            self.server.listen(8)
        except OSError:
            self.kernel.stop()
            raise
        self.control = ControlServer(self.server, self.selector, self._answer)

    @staticmethod
    def now() -> float:
        return time.monotonic()  # the same clock as the programs' bpf_ktime_get_ns

    def perform(self, actions: list[Action]) -> None:
        for action in actions:
            try:
                if isinstance(action, Program):
                    self.kernel.program(action.dst, action.src, action.expires)
                elif isinstance(action, Withdraw):
                    self.kernel.withdraw(action.dst)
                elif isinstance(action, Decide):
                    self.kernel.decide(action.dst, action.src)
                elif isinstance(action, Event):
                    self.log.write(json.dumps(action.as_dict()) + "\n")
            except OSError as exc:
                self.log.write(json.dumps({"time": round(self.now(), 3), "kind": "kernel-error",
                                           "action": type(action).__name__, "error": str(exc)}) + "\n")
        self.log.flush()

    def check_deprecated(self) -> None:
        """Sources the kernel flags deprecated (a Router Advertisement with preferred lifetime 0), read from
        /proc/net/if_inet6 (flags column, IFA_F_DEPRECATED); each newly deprecated one drops its entries."""
        now_dep = deprecated_addresses() & set(self.engine.sources)
        for src in now_dep - self.deprecated:
            self.perform(self.engine.deprecated(self.now(), src))
        self.deprecated = now_dep

    def poll(self) -> None:
        if self.now() >= self.next_dep_check:
            self.next_dep_check = self.now() + DEPRECATION_CHECK
            self.check_deprecated()
        races, received = self.kernel.poll()
        facts = [(t, 0, dst, src) for t, dst, src in races] + [(t, 1, peer, local) for t, peer, local in received]
        for t, kind, a, b in sorted(facts, key=lambda f: (f[0], f[1])):
            self.perform(self.engine.race_started(t, a, b) if kind == 0 else self.engine.received(t, a, b))
        self.perform(self.engine.tick(self.now()))
        if self.now() >= self.next_sweep:
            self.next_sweep = self.now() + FLOW_SWEEP
            self.kernel.expire_flows(self.flow_idle)

    def _answer(self, line: bytes) -> bytes:
        self.poll()  # answer with the latest state
        response, stop = control.answer(self.engine, self.now(), line, self.kernel)
        self.running = self.running and not stop
        return response

    def run(self) -> None:
        try:
            while self.running:
                for key, _ in self.selector.select(self.poll_interval):
                    key.data(key.fileobj)
                self.poll()
        finally:
            self.kernel.stop()
            self.server.close()
            if os.path.exists(self.socket_path):
                os.unlink(self.socket_path)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m agents.exitpath.daemon",
        description="Exit path cache agent for one host namespace (thesis 6.3.1.2): new outbound "
                    "communications survive the failure of an ISP without changing applications.",
        epilog="See agents/exitpath/README.md. Stop it with SIGTERM or `exitpathctl shutdown`; if it is "
               "killed, the kernel detaches its programs and the host works as without it.")
    p.add_argument("--socket", default="/tmp/exitpath.sock", help="control socket path (default %(default)s)")
    p.add_argument("--source", dest="sources", action="append", required=True,
                   help="a source address of this host, one per ISP (repeat; 2 to 4)")
    p.add_argument("--device", dest="devices", action="append", default=[],
                   help="attach to this device (repeat; default: every Ethernet-like device)")
    t = Timing()
    p.add_argument("--lifetime", type=float, default=t.lifetime, help="entry lifetime, s (default %(default)s)")
    p.add_argument("--lock", type=float, default=t.lock, help="a new entry's lock time, s (default %(default)s)")
    p.add_argument("--probe-timeout", type=float, default=t.probe_timeout,
                   help="step 3's timer: how long a race waits for a reply, s (default %(default)s)")
    p.add_argument("--poll", type=float, default=0.02, help="kernel poll interval, s (default %(default)s)")
    p.add_argument("--flow-idle", type=float, default=600.0,
                   help="forget a raced or rewritten flow idle this long, s (default %(default)s)")
    p.add_argument("--mark", type=lambda v: int(v, 0), default=DEFAULT_MARK,
                   help="skb mark of the agent's own packets (default %(default)#x)")
    p.add_argument("--no-route-hints", dest="route_hints", action="store_false",
                   help="do not install per-destination route hints (every new flow races)")
    p.add_argument("--seed", type=int, help="seed of step 5's random choice (reproducible runs)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        sources = tuple(Address(s) for s in args.sources)
        engine = ExitPathCache(sources, Timing(args.lifetime, args.lock, args.probe_timeout),
                               random.Random(args.seed))
        kernel = KernelPath(sources, tuple(args.devices), args.mark, args.route_hints)
        daemon = ExitPathDaemon(engine, kernel, args.socket, sys.stdout, args.poll, args.flow_idle)
    except (ValueError, OSError) as exc:
        print(f"exitpath daemon: {exc}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: setattr(daemon, "running", False))
    print(json.dumps({"kind": "ready", "pid": os.getpid(), "socket": args.socket, "sources": args.sources,
                      "devices": list(kernel.devices)}), flush=True)
    daemon.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
