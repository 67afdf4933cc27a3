"""The deprecation agent: watches ISPs from an exit router, tells the site's other routers, keeps radvd's
prefix states in step (thesis 6.3.1.2.1).

    python -m agents.deprecation.daemon --socket S --name ra \
        --watch ispa=ispa --probe ispa=2001:db8:a001:1::1,2001:db8:f000::10 \
        --remote ispb --listen 2001:db8:a001:f000::1 --announce 2001:db8:a001:f000::2 \
        --advert lan,2001:db8:a001:1::/64,ispa --advert lan,2001:db8:b001:1::/64,ispb \
        --radvd-conf radvd.conf --radvd-pid radvd.pid

One thread, one selector loop: every ``--interval`` it reads the kernel's ISP-learnt default route
(``ip -6 route show exact ::/0 proto bgp``: present only while the BGP session is up) and sends one
ICMPv6 echo per probed ISP from the exit's own address (source routing sends it out through that ISP) to a
target behind the ISP's upstream; it announces its verdicts over UDP (port 4791) to the routers that send
Router Advertisements, every ``--announce-interval`` and at once on a change; it applies what it hears
from other exits; on every change of a prefix it advertises it rewrites radvd's config and SIGHUPs radvd
by the PID radvd recorded.  Decisions are the sans-IO engine's (``engine.py``).  Each change is printed
as one JSON line (wall-clock ``time``), and the control socket answers ``status`` and ``events``.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..jsonctl import ControlServer
from .engine import Change, DeprecationEngine, Hysteresis
from .radvd import Advert, Lifetimes, render, write_and_reload

PORT = 4791
EVENTS_KEPT = 2000  # for `events`: a prefix flapping for hours would otherwise grow the agent without bound
ICMP6_ECHO_REQUEST, ICMP6_ECHO_REPLY = 128, 129


@dataclass
class Probe:
    isp: str
    source: str
    target: str
    sock: socket.socket
    ident: int
    seq: int = 0
    outstanding: dict[int, float] = field(default_factory=dict)

    def send(self, now: float) -> None:
        self.seq = (self.seq + 1) & 0xFFFF
        packet = struct.pack("!BBHHH", ICMP6_ECHO_REQUEST, 0, 0, self.ident, self.seq) + b"mhlab-deprecation"
        try:
            self.sock.sendto(packet, (self.target, 0))
        except OSError:
            pass  # no route: the timeout counts it lost
        self.outstanding[self.seq] = now

    def replies(self) -> list[int]:
        seqs = []
        while True:
            try:
                data, _ = self.sock.recvfrom(2048)
            except BlockingIOError:
                return seqs
            if len(data) >= 8:
                kind, _, _, ident, seq = struct.unpack("!BBHHH", data[:8])
                if kind == ICMP6_ECHO_REPLY and ident == self.ident:
                    seqs.append(seq)


def _raw_icmp(source: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    sock.bind((source, 0))
    # ICMP6_FILTER: pass only echo replies (a 256-bit block mask: a set bit blocks that type)
    blocked = [0xFFFFFFFF] * 8
    blocked[ICMP6_ECHO_REPLY >> 5] &= ~(1 << (ICMP6_ECHO_REPLY & 31))
    sock.setsockopt(socket.IPPROTO_ICMPV6, 1, struct.pack("8I", *blocked))
    sock.setblocking(False)
    return sock


def isp_routes_present(devices: dict[str, str]) -> dict[str, bool]:
    """ISP -> a BGP-learnt default route through its link (the device facing it) is in the kernel's table
    (BGP's next hop is the peer's link-local address, so the device names the ISP)."""
    out = subprocess.run(["ip", "-6", "-j", "route", "show", "exact", "::/0", "proto", "bgp"],
                         capture_output=True, text=True).stdout
    devs: set[str] = set()
    for route in json.loads(out or "[]"):
        if route.get("dev"):
            devs.add(route["dev"])
        for hop in route.get("nexthops", []):
            if hop.get("dev"):
                devs.add(hop["dev"])
    return {isp: dev in devs for isp, dev in devices.items()}


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise SystemExit(f"--{what} {item!r}: expected ISP=VALUE")
        out[key] = value
    return out


class Agent:
    def __init__(self, args: argparse.Namespace) -> None:
        self.name = args.name
        self.interval, self.timeout = args.interval, args.probe_timeout
        self.announce_every = args.announce_interval
        self.gateways = _pairs(args.watch, "watch")
        probes = _pairs(args.probe, "probe")
        for isp in probes:
            if isp not in self.gateways:
                raise SystemExit(f"--probe {isp}: not a watched ISP (--watch {isp}=DEVICE first)")
        hyst = Hysteresis(args.down_after, args.up_after, args.hold_down, args.peer_timeout)
        now = time.monotonic()
        self.engine = DeprecationEngine.create({isp: isp in probes for isp in self.gateways}, args.remote, hyst, now)
        self.probes = []
        for i, (isp, spec) in enumerate(sorted(probes.items())):
            source, _, target = spec.partition(",")
            self.probes.append(Probe(isp, source, target, _raw_icmp(source), (os.getpid() + i) & 0xFFFF))
        self.adverts = [Advert.parse(a) for a in args.advert]
        self.life = Lifetimes(args.preferred_lifetime, args.valid_lifetime)
        self.radvd_conf = Path(args.radvd_conf) if args.radvd_conf else None
        self.radvd_pid = Path(args.radvd_pid) if args.radvd_pid else None
        self.peers = [(a, PORT) for a in args.announce]
        self.udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        self.udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.udp.bind((args.listen or "::", PORT))
        self.udp.setblocking(False)
        self.events: deque[dict] = deque(maxlen=EVENTS_KEPT)  # every one is in the log too
        self.reloads = 0
        self.seq = 0
        self.ctl_path = args.socket
        self.ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        Path(args.socket).unlink(missing_ok=True)
        self.ctl.bind(args.socket)
        self.ctl.listen(8)
        self.ctl.setblocking(False)
        self.running = True
        self.selector = selectors.DefaultSelector()
        self.control = ControlServer(self.ctl, self.selector, self._answer)
        self.selector.register(self.udp, selectors.EVENT_READ, lambda _s: self.heard(time.monotonic()))
        for p in self.probes:
            self.selector.register(p.sock, selectors.EVENT_READ, lambda _s, p=p: self.replied(p))

    # -- actions --------------------------------------------------------------------------------------
    def apply(self, changes: list[Change]) -> None:
        if not changes:
            return
        for ch in changes:
            event = {"event": "preferred" if ch.preferred else "deprecated", "isp": ch.isp, "reason": ch.reason,
                     "time": time.time(), "node": self.name}
            self.events.append(event)
            print(json.dumps(event), flush=True)
        if any(ch.isp in {a.isp for a in self.adverts} for ch in changes):
            self.reload_radvd()
        if any(ch.isp in self.engine.local for ch in changes):
            self.announce()

    def reload_radvd(self) -> None:
        if not (self.adverts and self.radvd_conf and self.radvd_pid):
            return
        text = render(self.adverts, {a.isp: self.engine.preferred(a.isp) for a in self.adverts}, self.life)
        if write_and_reload(self.radvd_conf, self.radvd_pid, text) is not None:
            self.reloads += 1

    def announce(self) -> None:
        if not self.engine.local or not self.peers:
            return
        self.seq += 1
        msg = json.dumps({"from": self.name, "seq": self.seq,
                          "isps": {i: {"up": up, "reason": why} for i, (up, why) in
                                   self.engine.local_verdicts().items()}}).encode()
        for peer in self.peers:
            try:
                self.udp.sendto(msg, peer)
            except OSError:
                pass

    def heard(self, now: float) -> None:
        while True:
            try:
                data, _ = self.udp.recvfrom(4096)
            except BlockingIOError:
                return
            try:
                msg = json.loads(data)
                for isp, verdict in msg["isps"].items():
                    self.apply(self.engine.heard(now, isp, bool(verdict["up"]), f"{msg['from']}: {verdict['reason']}"))
            except (ValueError, KeyError, TypeError, AttributeError):
                continue

    def check_routes(self, now: float) -> None:
        if not self.gateways:
            return
        for isp, present in isp_routes_present(self.gateways).items():
            self.apply(self.engine.routes(now, isp, present))

    def replied(self, probe: Probe) -> None:
        now = time.monotonic()
        for seq in probe.replies():
            if probe.outstanding.pop(seq, None) is not None:
                self.apply(self.engine.probe(now, probe.isp, True))

    def _answer(self, line: bytes) -> bytes:
        try:
            req = json.loads(line or b"{}")
            answer = {"ok": True, "result": self.handle(req)}
        except (ValueError, KeyError, AttributeError) as exc:
            answer = {"ok": False, "error": str(exc)}
        return json.dumps(answer).encode() + b"\n"

    def handle(self, req: dict) -> object:
        cmd = req.get("cmd")
        if cmd == "status":
            return {"node": self.name, "pid": os.getpid(), **self.engine.status(time.monotonic()),
                    "radvd_reloads": self.reloads, "adverts": [asdict(a) for a in self.adverts],
                    "hysteresis": asdict(self.engine.hyst), "interval": self.interval,
                    "probe_timeout": self.timeout,
                    "probes": {p.isp: {"source": p.source, "target": p.target} for p in self.probes}}
        if cmd == "events":
            since = float(req.get("since", 0))
            return [e for e in self.events if e["time"] > since]
        if cmd == "shutdown":
            self.running = False
            return "stopping"
        raise ValueError(f"unknown command {cmd!r}; known: status, events, shutdown")

    # -- loop -----------------------------------------------------------------------------------------
    def run(self) -> None:
        self.reload_radvd()
        print(json.dumps({"event": "ready", "pid": os.getpid(), "node": self.name, "time": time.time()}), flush=True)
        next_check = next_announce = time.monotonic()
        while self.running:
            now = time.monotonic()
            if now >= next_check:
                self.check_routes(now)
                for p in self.probes:
                    p.send(now)
                next_check = now + self.interval
            if now >= next_announce:
                self.announce()
                next_announce = now + self.announce_every
            for p in self.probes:
                for seq, sent in list(p.outstanding.items()):
                    if now - sent > self.timeout:
                        del p.outstanding[seq]
                        self.apply(self.engine.probe(now, p.isp, False))
            self.apply(self.engine.tick(now))
            wake = min([next_check, next_announce] + [s + self.timeout for p in self.probes
                                                         for s in p.outstanding.values()])
            for key, _ in self.selector.select(max(0.0, wake - time.monotonic())):
                key.data(key.fileobj)
        Path(self.ctl_path).unlink(missing_ok=True)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m agents.deprecation.daemon", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--socket", required=True, help="control socket path (JSON lines)")
    p.add_argument("--name", default=socket.gethostname(), help="this router's name (in announcements)")
    p.add_argument("--watch", action="append", default=[], metavar="ISP=DEVICE",
                   help="an ISP this router is the exit to, and the device facing it (its BGP default's)")
    p.add_argument("--probe", action="append", default=[], metavar="ISP=SOURCE,TARGET",
                   help="probe a watched ISP: echo to TARGET from SOURCE (an address of the ISP's prefix)")
    p.add_argument("--remote", action="append", default=[], metavar="ISP",
                   help="an ISP whose exit is another router, learnt from its announcements")
    p.add_argument("--listen", default="", help="address for announcements from other exits (default ::)")
    p.add_argument("--announce", action="append", default=[], metavar="ADDR",
                   help="a router to tell this router's verdicts (UDP port %d)" % PORT)
    p.add_argument("--advert", action="append", default=[], metavar="IFACE,PREFIX/64,ISP",
                   help="a prefix radvd advertises on a LAN, and the ISP it belongs to")
    p.add_argument("--radvd-conf", help="radvd's config file (rewritten on every change)")
    p.add_argument("--radvd-pid", help="radvd's pid file (SIGHUP after a rewrite)")
    p.add_argument("--interval", type=float, default=0.1, help="seconds between route checks and probes")
    p.add_argument("--probe-timeout", type=float, default=0.2, help="seconds before a probe counts as lost")
    p.add_argument("--announce-interval", type=float, default=0.1, help="seconds between announcements")
    p.add_argument("--down-after", type=int, default=5, help="probes lost in a row that make an ISP unusable")
    p.add_argument("--up-after", type=int, default=10, help="probes answered in a row before it is usable again")
    p.add_argument("--hold-down", type=float, default=2.0, help="seconds an ISP stays unusable at least")
    p.add_argument("--peer-timeout", type=float, default=0.5,
                   help="seconds of silence from a remote exit before its ISP counts as unusable")
    p.add_argument("--preferred-lifetime", type=int, default=1800, help="advertised preferred lifetime (s)")
    p.add_argument("--valid-lifetime", type=int, default=3600, help="advertised valid lifetime (s)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    agent = Agent(args)
    signal.signal(signal.SIGTERM, lambda *_: setattr(agent, "running", False))
    try:
        agent.run()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
