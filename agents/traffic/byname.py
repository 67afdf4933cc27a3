"""New connections the way unmodified applications open them: a fresh name lookup (``--name``) or a
literal address (``--dst``), a fresh connection every ``--interval-ms``, from the source address the
kernel picks (no ``--src``: the socket is not bound) or from one given address.

Thesis 6.3.1.1: a multihomed host publishes one address per ISP; an external client that finds the first
address dead should try the next.  6.3.1.2.1: a host whose prefix was deprecated stops choosing it for new
connections, which only shows when the kernel chooses.  How fast a client falls back depends on the
client, so there are four kinds:

- ``curl``        real curl (glibc getaddrinfo, RFC 6724 order): addresses one after another, each given
                  half of the remaining ``--connect-timeout`` while others are left (curl 7.x);
- ``sequential``  the ``socket.create_connection`` loop: getaddrinfo order, one address at a time, each
                  with the full per-address timeout (what most simple programs do);
- ``happy``       RFC 8305 Happy Eyeballs: asyncio's ``open_connection(happy_eyeballs_delay=0.25)`` (the
                  standard library's maintained implementation) starts the next address 250 ms after the
                  previous one without giving it up; the first to connect wins;
- ``dnsorder``    like ``sequential`` but in the order the DNS server sent (its own AAAA query to the
                  resolv.conf name server, no RFC 6724 sorting): the client the thesis's traffic
                  engineering assumes (6.3.2.1.4).

Each attempt sends ``GET /`` and reads the status line, and logs one ``connect`` event: ok, which
address answered (``remote``), the source the connection used (``local``), which addresses were tried,
resolve and connect times (from the attempt's start: the fallback's cost is in ``connect_ms``).

    python -m agents.traffic.byname connect --client happy --name h1.lab.example --port 80 --interval-ms 200
    python -m agents.traffic.byname connect --client sequential --dst 2001:db8:f000::11 --count 5
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import random
import socket
import struct
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .common import EventLog, StopCondition, agent_parser, common_options, os_error_fields, run_agent

CLIENTS = ("curl", "sequential", "happy", "dnsorder")
HAPPY_DELAY_S = 0.25  # RFC 8305 section 5: the recommended Connection Attempt Delay


@dataclass
class Outcome:
    """What one attempt found; ``tried`` lists addresses in the order the client tried them."""

    ok: bool = False
    remote: str | None = None
    local: str | None = None
    tried: list[str] = field(default_factory=list)
    resolve_ms: float | None = None
    connect_ms: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class Target:
    """What every attempt connects to: a name resolved afresh each time, or a literal address; and the
    source to bind (None: the kernel picks, RFC 6724, as for an unmodified application's socket)."""

    name: str | None
    dst: str | None
    port: int
    path: str
    src: str | None
    connect_timeout: float  # seconds, per address for the sequential clients, curl's --connect-timeout
    max_time: float  # seconds an attempt may take in all

    @property
    def host(self) -> str:
        """The URL's host part and the HTTP Host header."""
        if self.name:
            return self.name
        return f"[{self.dst}]" if self.dst and ":" in self.dst else str(self.dst)

    @classmethod
    def of(cls, args: argparse.Namespace) -> "Target":
        return cls(args.name, args.dst, args.port, args.path, args.src, args.connect_timeout_ms / 1000,
                   args.max_time_ms / 1000)


def _ms(since: float) -> float:
    return round((time.monotonic() - since) * 1000, 3)


def _http_ok(sock: socket.socket, target: Target, timeout: float) -> bool:
    sock.settimeout(timeout)
    sock.sendall(f"GET {target.path} HTTP/1.0\r\nHost: {target.host}\r\n\r\n".encode())
    return sock.recv(64).startswith(b"HTTP/1.")


def connect_in_order(addresses: list[str], target: Target, out: Outcome) -> socket.socket | None:
    """The ``socket.create_connection`` loop: each address in turn with the whole timeout; first wins.
    The socket is bound only when a source was given (else the kernel chooses at connect time)."""
    for addr in addresses:
        out.tried.append(addr)
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        sock.settimeout(target.connect_timeout)
        try:
            if target.src:
                sock.bind((target.src, 0))
            sock.connect((addr, target.port))
            out.remote, out.local = addr, sock.getsockname()[0]
            return sock
        except OSError as exc:
            out.error = os_error_fields(exc)["error"] if exc.errno else "timeout"
            sock.close()
    return None


def getaddrinfo_order(name: str, port: int) -> list[str]:
    """glibc's answer: the DNS records sorted by RFC 6724 (only ties keep the server's order)."""
    infos = socket.getaddrinfo(name, port, socket.AF_INET6, socket.SOCK_STREAM)
    return [info[4][0] for info in infos]


def nameserver(resolv_conf: str = "/etc/resolv.conf") -> str:
    for line in Path(resolv_conf).read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            return parts[1]
    raise OSError(f"no nameserver in {resolv_conf}")


def _skip_name(msg: bytes, pos: int) -> int:
    while True:
        length = msg[pos]
        if length & 0xC0 == 0xC0:
            return pos + 2
        if length == 0:
            return pos + 1
        pos += 1 + length


def dns_order(name: str, server: str | None = None, timeout: float = 1.0) -> list[str]:
    """The AAAA records of ``name`` in the order the server put them on the wire (one UDP query, RD set)."""
    qid = random.randrange(1 << 16)
    question = b"".join(bytes([len(label)]) + label.encode() for label in name.rstrip(".").split(".")) + b"\0"
    query = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + question + struct.pack("!HH", 28, 1)
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(query, (server or nameserver(), 53))
        msg = sock.recv(4096)
    rid, flags, qd, an = struct.unpack("!HHHH", msg[:8])
    if rid != qid or flags & 0x000F:
        raise OSError(f"DNS answer for {name}: id {rid} (asked {qid}), rcode {flags & 0xF}")
    pos = 12
    for _ in range(qd):
        pos = _skip_name(msg, pos) + 4
    out = []
    for _ in range(an):
        pos = _skip_name(msg, pos)
        rtype, _cls, _ttl, rdlen = struct.unpack("!HHIH", msg[pos:pos + 10])
        pos += 10
        if rtype == 28 and rdlen == 16:
            out.append(str(ipaddress.IPv6Address(msg[pos:pos + 16])))
        pos += rdlen
    return out


def _ordered_client(order: Callable[[str, int], list[str]]) -> Callable[[Target, Outcome], None]:
    def attempt(target: Target, out: Outcome) -> None:
        t0 = time.monotonic()
        if target.name is None:
            addresses = [str(target.dst)]
        else:
            try:
                addresses = order(target.name, target.port)
            except OSError as exc:
                out.error = f"resolve: {exc}"
                return
            out.resolve_ms = _ms(t0)
        sock = connect_in_order(addresses, target, out)
        if sock is not None:
            out.connect_ms = _ms(t0)
            with sock:
                try:
                    out.ok = _http_ok(sock, target, target.connect_timeout)
                except OSError as exc:
                    out.error = f"http: {exc}"
    return attempt


def _happy(target: Target, out: Outcome) -> None:
    t0 = time.monotonic()

    async def run() -> None:
        local = (target.src, 0) if target.src else None
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(target.name or target.dst, target.port, family=socket.AF_INET6,
                                    local_addr=local, happy_eyeballs_delay=HAPPY_DELAY_S), target.max_time)
        out.connect_ms = _ms(t0)
        out.remote = writer.get_extra_info("peername")[0]
        out.local = writer.get_extra_info("sockname")[0]
        writer.write(f"GET {target.path} HTTP/1.0\r\nHost: {target.host}\r\n\r\n".encode())
        line = await asyncio.wait_for(reader.readline(), target.max_time)
        out.ok = line.startswith(b"HTTP/1.")
        writer.close()

    try:
        asyncio.run(run())
    except (OSError, asyncio.TimeoutError) as exc:
        out.error = type(exc).__name__ if not str(exc) else str(exc)[:200]


def curl_argv(target: Target) -> list[str]:
    """Real curl: its own resolver call (glibc) and its own fallback between addresses."""
    argv = ["curl", "--silent", "--show-error", "--globoff", "--output", "/dev/null", "--connect-timeout",
            f"{target.connect_timeout:g}", "--max-time", f"{target.max_time:g}", "--write-out", "%{json}"]
    if target.src:
        argv += ["--interface", target.src]
    return argv + [f"http://{target.host}:{target.port}{target.path}"]


def _curl(target: Target, out: Outcome) -> None:
    proc = subprocess.run(curl_argv(target), capture_output=True, text=True)
    try:
        info: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else {}
    except (json.JSONDecodeError, IndexError):
        info = {}
    out.ok = proc.returncode == 0 and 200 <= int(info.get("http_code") or 0) < 400
    out.remote = info.get("remote_ip") or None
    out.local = info.get("local_ip") or None
    out.resolve_ms = round(float(info.get("time_namelookup") or 0) * 1000, 3) or None if target.name else None
    out.connect_ms = round(float(info.get("time_connect") or 0) * 1000, 3) or None
    if not out.ok:
        out.error = info.get("errormsg") or proc.stderr.strip()[:200] or f"curl exit {proc.returncode}"


ATTEMPTS: dict[str, Callable[[Target, Outcome], None]] = {
    "curl": _curl,
    "sequential": _ordered_client(getaddrinfo_order),
    "happy": _happy,
    "dnsorder": _ordered_client(lambda name, port: dns_order(name)),
}


def run_client(args: argparse.Namespace, log: EventLog, stop: StopCondition) -> dict[str, object]:
    """Start an attempt every ``--interval-ms`` (each in its own thread, so an attempt stuck in a timeout
    never delays the next one); ``--count`` ends the run after that many attempts."""
    attempt, target = ATTEMPTS[args.client], Target.of(args)
    threads: list[threading.Thread] = []
    results = {"ok": 0}
    lock = threading.Lock()

    def one(n: int) -> None:
        started, t0 = time.time(), time.monotonic()
        out = Outcome()
        attempt(target, out)
        with lock:
            results["ok"] += out.ok
        log.write("connect", n=n, started=round(started, 6), client=args.client, name=target.name,
                  dst=target.dst, ok=out.ok, remote=out.remote, local=out.local, tried=out.tried or None,
                  resolve_ms=out.resolve_ms, connect_ms=out.connect_ms, total_ms=_ms(t0),
                  error=None if out.ok else out.error)

    n = 0
    next_start = time.monotonic()
    while not stop and (args.count is None or n < args.count):
        n += 1
        thread = threading.Thread(target=one, args=(n,), daemon=True)
        thread.start()
        threads.append(thread)
        next_start += args.interval_ms / 1000
        time.sleep(max(0.0, min(next_start - time.monotonic(), stop.remaining())))
    for thread in threads:
        thread.join(timeout=max(0.0, target.max_time + 1))
    return {"attempts": n, "ok": results["ok"], "unfinished": sum(t.is_alive() for t in threads)}


def parser() -> argparse.ArgumentParser:
    p, roles = agent_parser("byname", __doc__)
    client = roles.add_parser("connect", parents=[common_options()],
                              help="open a new connection every --interval-ms")
    client.add_argument("--client", choices=CLIENTS, required=True, help="which client behaviour (see above)")
    where = client.add_mutually_exclusive_group(required=True)
    where.add_argument("--name", help="a host name, resolved afresh for every connection, e.g. h1.lab.example")
    where.add_argument("--dst", help="a literal address instead of a name (not with --client dnsorder)")
    client.add_argument("--src", default=None, help="bind this source address (default: the kernel picks)")
    client.add_argument("--port", type=int, default=80)
    client.add_argument("--path", default="/", help="URL path requested (default /)")
    client.add_argument("--interval-ms", type=float, default=200.0, help="ms between attempt starts (default 200)")
    client.add_argument("--count", type=int, default=None, help="stop after this many attempts")
    client.add_argument("--connect-timeout-ms", type=float, default=1000.0,
                        help="ms: curl's --connect-timeout; per address for sequential/dnsorder (default 1000)")
    client.add_argument("--max-time-ms", type=float, default=5000.0,
                        help="ms an attempt may take in all (default 5000)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.client == "dnsorder" and args.name is None:
        parser().error("--client dnsorder reads the DNS answer itself: give --name")
    if args.dst is not None:
        try:
            ipaddress.IPv6Address(args.dst)
        except ValueError:
            parser().error(f"--dst {args.dst!r} is not an IPv6 address (use --name for a name)")
    return run_agent("byname", parser(), {"connect": run_client}, argv)


if __name__ == "__main__":
    raise SystemExit(main())
