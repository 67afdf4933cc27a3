"""The shim daemon: runs in one host's network namespace and drives the engine.

I/O only: a raw IPv6 socket for protocol 140 (Shim6), optionally a raw ICMPv6 socket
(parameter problem = peer without shim; destination unreachable = a failing pair) and an
AF_PACKET socket that observes data packets (``observer``: the context policy needs to see a
flow start; its socket filter passes only what the data path's counters do not tell REAP),
a sock_diag socket that hears TCP's retransmission timeouts on the contexts'
ULIDs (``ulp``, upper-layer feedback), plus the local JSON control socket.  Everything else
is ``engine``.

Run::

    python -m agents.shim.daemon --socket /run/hA-shim.sock \\
        --prefix 2001:db8:a1:1::/64 --prefix 2001:db8:a2:1::/64 --sec 0 \\
        --modifier 00112233445566778899aabbccddeeff --pseudo-key <96 hex> \\
        --profile tuned --policy immediate --observe

It prints one JSON line with its ULIDs when ready, then logs events (JSON lines) to stdout.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import selectors
import socket
import struct
import sys
import time
from dataclasses import dataclass
from typing import TextIO

from ..jsonctl import ControlServer
from . import control
from . import messages as m
from .actions import Action, Event, IcmpError, Send
from .config import DaemonConfig
from .datapath import DataPath, make_datapath
from .engine import ShimEngine
from .observer import Observer
from .packet import icmp_error
from .plan import plan_for
from .sockfilter import Exclusions
from .ulp import (ULP_ACTIVE_WINDOW, ULP_BASELINE_INTERVAL, ULP_DISCOVER_QUIET_INTERVAL, ULP_POLL_INTERVAL, QuietPairs,
                  RtoMin, SockDiag)

Address = ipaddress.IPv6Address
# the data path's counters are read this often while a context is in a quiet spell (REAP's inputs at
# 10 Hz, as before), and at the slow rate otherwise: a flow that works needs no REAP timer (each
# poll only re-arms the keepalive it then cancels), and every REAP deadline reads them first
FAST_POLL, SLOW_POLL = 0.1, 1.0
ICMP6_DST_UNREACH, ICMP6_PARAM_PROB = 1, 4
ICMP6_FILTER = 1  # <netinet/icmp6.h>: the socket option, and a filter that passes no type
ICMP6_BLOCK_ALL = b"\xff" * 32


@dataclass
class LoopStats:
    """What the main loop did since it started (``status`` shows it): its cost under a flow."""

    wakeups: int = 0
    counter_polls: int = 0
    quiet_signals: int = 0
    quiet_spells: int = 0


class ShimDaemon:
    def __init__(self, engine: ShimEngine, socket_path: str, observe: bool, icmp: bool, log: TextIO,
                 datapath: DataPath | None = None, poll_interval: float = FAST_POLL, ulp: bool = True) -> None:
        self.engine = engine
        self.ulp = SockDiag() if ulp else None
        self.next_ulp_poll = 0.0
        self.quiet = QuietPairs()
        self.stats = LoopStats()
        self.rto_min = RtoMin(engine.profile.tcp_rto_min)
        self.datapath = datapath or DataPath()
        self.poll_interval = poll_interval
        self.next_poll = 0.0
        self.socket_path = socket_path
        self.log = log
        self.start = time.monotonic()
        self.selector = selectors.DefaultSelector()
        self.running = True
        self.raw = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 140)
        self.raw.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
        self.selector.register(self.raw, selectors.EVENT_READ, self._on_shim)
        self.icmp = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)  # errors we send
        if icmp:
            self.selector.register(self.icmp, selectors.EVENT_READ, self._on_icmp)
        else:
            self.icmp.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, ICMP6_BLOCK_ALL)  # send only
        self.observer: Observer | None = None
        if observe:
            self.observer = Observer(engine.identity.owns, restored=self.datapath.mode != "none")
            self.selector.register(self.observer.sock, selectors.EVENT_READ, self._on_data)
        if os.path.exists(socket_path):
            os.unlink(socket_path)
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(socket_path)
        self.server.listen(8)
        self.control = ControlServer(self.server, self.selector, self._answer)
        self.rto_min.apply()
        self.datapath.start()
        for reader, handler in self.datapath.readers():
            self.selector.register(reader, selectors.EVENT_READ, lambda _sock, h=handler: self._observed(h()))
        self.quiet_source = self.datapath.quiet_source()
        if self.quiet_source is not None:
            self.selector.register(self.quiet_source, selectors.EVENT_READ, self._on_quiet)
            if self.ulp is not None:
                self.ulp.discover_interval = ULP_DISCOVER_QUIET_INTERVAL

    def now(self) -> float:
        return time.monotonic() - self.start

    # --- output ---------------------------------------------------------------------------

    def perform(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                self._send(action)
            elif isinstance(action, IcmpError):
                self._send_icmp(action)
            elif isinstance(action, Event):
                self.log.write(json.dumps(action.as_dict()) + "\n")
        self.log.flush()
        if actions:
            self._program()

    def _program(self) -> None:
        """Bring the data path and the observer's filter in line with the contexts (after anything
        that may change them)."""
        try:
            self.datapath.apply(plan_for(self.engine.contexts.values(), self.engine.identity.locators))
        except OSError as exc:
            self.log.write(json.dumps({"time": round(self.now(), 3), "kind": "datapath-error", "error": str(exc)}) + "\n")
        if self.observer is not None:
            pairs, peers = self.engine.unobserved(counted=self.datapath.mode != "none")
            try:
                self.observer.refilter(Exclusions(pairs, peers))
            except OSError as exc:  # the filter only saves work: without it every packet is read
                self.log.write(json.dumps({"time": round(self.now(), 3), "kind": "observer-error",
                                           "error": str(exc)}) + "\n")

    def _on_quiet(self, _source: object) -> None:
        """The kernel says a context sends and hears nothing: look at its TCP now and every poll until
        the peer is heard again; REAP's Send Timeout runs from here too (data sent)."""
        signals = self.datapath.quiet_signals()
        if not signals:
            return
        self.stats.quiet_signals += len(signals)
        self.stats.counter_polls += 1
        self._observed(self.datapath.poll())  # what came in before the spell first, then the spell's start
        self.next_poll = self.now() + self.poll_interval
        for signal in signals:
            if self.quiet.signal(signal.ulids, signal.last_rx):
                self.stats.quiet_spells += 1
                if self.ulp is not None:
                    self.ulp.rediscover()
            self.next_ulp_poll = 0.0
            self.perform(self.engine.observe(self.now(), *signal.ulids, True))

    def _settle_quiet(self) -> None:
        if self.quiet_source is not None and self.quiet.spells:
            self.quiet.settle(self.datapath.last_rx, self.ulp.tracker.pending_pairs() if self.ulp else set())

    def _ulp_targets(self) -> tuple[set, set | None]:
        """(pairs whose connections are read, pairs checked for timeouts: None for all of them)."""
        watched = self.engine.ulid_pairs(self._active_since())
        if self.quiet_source is None:
            return watched, None
        return watched, (self.quiet.pairs() | self.ulp.tracker.pending_pairs()) & watched

    def _poll_ulp(self) -> None:
        """TCP timed out a retransmission between a context's ULIDs and heard nothing since: a failure
        signal on its pair.  A timeout whose ACK came back (random loss) is only logged."""
        watched, detect = self._ulp_targets()
        for loss in self.ulp.poll(watched, self.now(), detect):
            st = loss.state
            self.log.write(json.dumps({"time": round(self.now(), 3), "kind": "tcp-timeout", "timeout": loss.kind,
                                       "local": str(st.local), "peer": str(st.peer), "ca_state": st.ca_state,
                                       "backoff": st.backoff, "rto_ms": st.rto_us / 1000,
                                       "total_retrans": st.total_retrans, "quiet_ms": st.last_ack_recv_ms,
                                       "answered": loss.answered}) + "\n")
            if not loss.answered:
                self.perform(self.engine.upper_layer_loss(self.now(), loss.local, loss.peer, loss.kind))
        self._settle_quiet()
        _, detect = self._ulp_targets()
        self.next_ulp_poll = self.now() + (ULP_POLL_INTERVAL if detect is None or detect else ULP_BASELINE_INTERVAL)

    def _active_since(self) -> float | None:
        """Watch only contexts that sent data lately (TCP times out only while it sends), when the data
        path's counters or the observer tell; otherwise every context."""
        counted = self.datapath.mode != "none" or self.observer is not None
        return self.now() - ULP_ACTIVE_WINDOW if counted else None

    def _ulp_due(self) -> bool:
        return self.ulp is not None and bool(self.engine.ulid_pairs(self._active_since()))

    def _observed(self, observations: list) -> None:
        """Data the data path carried: REAP's inputs (Send Timeout, received on a pair)."""
        for ob in observations:
            self.perform(self.engine.observe(self.now(), ob.local, ob.peer, ob.outgoing))

    def _send(self, action: Send) -> None:
        pktinfo = struct.pack("16sI", action.src.packed, 0)
        try:
            self.raw.sendmsg([m.encode(action.message)], [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, pktinfo)], 0,
                             (str(action.dst), 0))
        except OSError as exc:  # unreachable route, address gone: REAP will notice
            self.log.write(json.dumps({"time": round(self.now(), 3), "kind": "send-error", "dst": str(action.dst),
                                       "error": exc.strerror or str(exc)}) + "\n")

    def _send_icmp(self, action: IcmpError) -> None:
        body = icmp_error(action.type, action.code, action.pointer, action.dst, action.src, action.invoking)
        pktinfo = struct.pack("16sI", action.src.packed, 0)
        try:
            self.icmp.sendmsg([body], [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, pktinfo)], 0, (str(action.dst), 0))
        except OSError as exc:
            self.log.write(json.dumps({"time": round(self.now(), 3), "kind": "send-error", "dst": str(action.dst),
                                       "error": exc.strerror or str(exc)}) + "\n")

    # --- input ----------------------------------------------------------------------------

    def _on_shim(self, sock: socket.socket) -> None:
        data, ancdata, _flags, addr = sock.recvmsg(65535, socket.CMSG_SPACE(20))
        dst = next((Address(c[2][:16]) for c in ancdata if c[1] == socket.IPV6_PKTINFO), None)
        if dst is None or not self.engine.identity.owns(dst):
            return  # raw sockets see every protocol-140 packet of the namespace, ours or not
        self.perform(self.engine.receive(self.now(), Address(addr[0].split("%")[0]), dst, data))

    def _on_icmp(self, sock: socket.socket) -> None:
        data, _ = sock.recvfrom(65535)
        if len(data) < 8 + 40 or data[0] not in (ICMP6_DST_UNREACH, ICMP6_PARAM_PROB):
            return
        inner = data[8:]
        nh, src, dst = inner[6], Address(inner[8:24]), Address(inner[24:40])
        if data[0] == ICMP6_PARAM_PROB and nh == 140:
            self.perform(self.engine.icmp_parameter_problem(self.now(), dst))
        elif data[0] == ICMP6_DST_UNREACH and self.engine.identity.owns(src):
            self.perform(self.engine.icmp_unreachable(self.now(), src, dst))

    def _on_data(self, _sock: socket.socket) -> None:
        self.observer.read(lambda local, peer, outgoing, exact:
                           self.perform(self.engine.observe(self.now(), local, peer, outgoing, exact)))

    def _answer(self, line: bytes) -> bytes:
        observer = vars(self.observer.stats) if self.observer is not None else None
        loop = {**vars(self.stats), "ulp_dumps": self.ulp.dumps, "ulp_lookups": self.ulp.lookups} if self.ulp else vars(self.stats)
        response, actions, stop = control.answer(self.engine, self.now(), line, self.datapath, observer, loop)
        self.running = self.running and not stop
        self.perform(actions)
        return response

    # --- loop -----------------------------------------------------------------------------

    def run(self) -> None:
        try:
            while self.running:
                deadline = self.engine.next_deadline()
                timeout = None if deadline is None else max(0.0, deadline - self.now())
                if self.datapath.mode != "none":
                    timeout = max(0.0, min(timeout if timeout is not None else 1.0, self.next_poll - self.now()))
                if self._ulp_due():
                    timeout = max(0.0, min(timeout if timeout is not None else 1.0, self.next_ulp_poll - self.now()))
                for key, _ in self.selector.select(timeout if timeout is None else min(timeout, 1.0)):
                    key.data(key.fileobj)
                self.stats.wakeups += 1
                due = deadline is not None and self.now() >= deadline  # REAP decides on fresh counters
                if self.datapath.mode != "none" and (due or self.now() >= self.next_poll):
                    self.stats.counter_polls += 1
                    self._observed(self.datapath.poll())
                    self._settle_quiet()
                    fast = self.quiet_source is None or self.quiet.spells
                    self.next_poll = self.now() + (self.poll_interval if fast else SLOW_POLL)
                if self.ulp is not None and self.now() >= self.next_ulp_poll:  # nothing to watch: no syscall
                    self._poll_ulp()
                self.perform(self.engine.tick(self.now()))
                self._program()
        finally:
            self.datapath.stop()
            self.rto_min.restore()
            if self.ulp is not None:
                self.ulp.close()
            if self.observer is not None:
                self.observer.close()
            self.server.close()
            if os.path.exists(self.socket_path):
                os.unlink(self.socket_path)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m agents.shim.daemon",
        description="Shim6/HBA agent for one host namespace (thesis 6.4; RFC 5533/5534/5535).",
        epilog="Flags override the JSON file given with --config; see agents/shim/README.md.",
    )
    p.add_argument("--config", help="JSON configuration file")
    p.add_argument("--socket", help="control socket path (default /tmp/shim6.sock)")
    p.add_argument("--prefix", dest="prefixes", action="append", help="a /64 of this host (repeat per ISP)")
    p.add_argument("--sec", type=int, help="CGA Sec parameter (0 or 1 are practical)")
    p.add_argument("--modifier", help="32 hex digits: where the modifier search starts")
    p.add_argument("--pseudo-key", dest="pseudo_key", help="96 hex digits: the HBA 384-bit pseudo-key")
    p.add_argument("--key", help="RSA private key (PEM): hybrid HBA/CGA addresses")
    p.add_argument("--profile", choices=["rfc", "tuned"], help="timer profile")
    p.add_argument("--timer", action="append", default=[], metavar="NAME=SECONDS", help="override one timer")
    p.add_argument("--policy", help="immediate | packets:N | seconds:T")
    p.add_argument("--connect", action="append", help="peer ULID to start a context with at once")
    p.add_argument("--observe", action="store_true", default=None, help="sniff data packets (AF_PACKET)")
    p.add_argument("--no-icmp", dest="icmp", action="store_false", default=None, help="do not open the ICMPv6 socket")
    p.add_argument("--no-ulp", dest="ulp", action="store_false", default=None,
                   help="do not watch TCP's retransmission timeouts (sock_diag) as a failure signal")
    p.add_argument("--datapath", choices=["none", "ebpf"],
                   help="rewrite data packets after a pair switch: ebpf (tc programs, needs clang) or none "
                        "(default: control plane only)")
    p.add_argument("--steering-device", dest="steering_device",
                   help="unused: translation now happens on the real devices (kept so that old configurations start)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    flags = {k: v for k, v in vars(args).items() if k not in ("config", "timer")}
    if args.timer:
        flags["timers"] = {name: float(value) for name, _, value in (t.partition("=") for t in args.timer)}
    try:
        config = DaemonConfig.from_sources(args.config, flags)
        engine = ShimEngine(config.identity(), config.timer_profile(), config.context_policy())
        datapath = make_datapath(config.datapath, config.steering_device)
        daemon = ShimDaemon(engine, config.socket, config.observe, config.icmp, sys.stdout, datapath, ulp=config.ulp)
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"shim daemon: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"kind": "ready", "pid": os.getpid(), "socket": config.socket,
                      "ulids": [str(a) for a in engine.identity.ulids], "profile": engine.profile.name,
                      "datapath": datapath.mode}), flush=True)
    for peer in config.connect:
        daemon.perform(engine.connect(daemon.now(), Address(peer)))
    daemon.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
