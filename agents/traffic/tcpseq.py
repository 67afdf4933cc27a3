"""Long-lived TCP stream with application sequence numbers, so every gap is visible at ~10 ms resolution.

The sender writes one fixed-size record every ``--interval-ms`` (connection id, sequence number, send
time); the receiver logs each record with its receive time.  A gap in the receiver's log is a gap in
delivery; the sender's log says when the connection broke (reset, timeout, peer close) and, with
``--reconnect``, whether and when a new connection worked -- the two outcomes the thesis (ch. 3.5.1)
distinguishes: "established communication lost" versus "new communication possible".

    python -m agents.traffic.tcpseq recv --bind ::1 --port 5001 --log r.jsonl --duration 10
    python -m agents.traffic.tcpseq send --dst ::1 --port 5001 --src ::1 --log s.jsonl --duration 10
"""

from __future__ import annotations

import argparse
import selectors
import socket
import struct
import time

from .common import EventLog, StopCondition, agent_parser, common_options, family_of, run_agent, os_error_fields

RECORD = struct.Struct("!4sHHIQd")  # magic, record size, flags, connection id, sequence, send time
MAGIC = b"MHTS"
MARK_EVERY = 1.0  # seconds between "mark" events (sequence -> send time, for windowed loss)
RECV_SIZE = 65536  # bytes the receiver reads at most per call


def encode_record(conn: int, seq: int, sent: float, size: int) -> bytes:
    """One record, padded to ``size`` bytes (at least the header)."""
    size = max(size, RECORD.size)
    return RECORD.pack(MAGIC, size, 0, conn, seq, sent).ljust(size, b"\0")


def decode_records(buf: bytearray) -> list[tuple[int, int, float]]:
    """Take every complete record off the front of ``buf``; returns (conn, seq, send time) tuples."""
    out = []
    while len(buf) >= RECORD.size:
        magic, size, _flags, conn, seq, sent = RECORD.unpack_from(buf)
        if magic != MAGIC or size < RECORD.size:
            raise ValueError("stream out of sync: bad record header")
        if len(buf) < size:
            break
        del buf[:size]
        out.append((conn, seq, sent))
    return out


def connect(args: argparse.Namespace, attempt: int, log: EventLog) -> socket.socket | None:
    """One connection attempt from ``--src`` with ``--connect-timeout-ms``; logs connect or connect_error."""
    sock = socket.socket(family_of(args.dst), socket.SOCK_STREAM, IPPROTO_MPTCP if args.mptcp else 0)
    started = time.time()
    try:
        if args.src:
            sock.bind((args.src, 0))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if args.user_timeout_ms:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, args.user_timeout_ms)
        sock.settimeout(args.connect_timeout_ms / 1000.0)
        sock.connect((args.dst, args.port))
    except socket.timeout:
        log.write("connect_error", conn=attempt, error="timeout", started=started)
        sock.close()
        return None
    except OSError as exc:
        log.write("connect_error", conn=attempt, started=started, **os_error_fields(exc))
        sock.close()
        return None
    sock.setblocking(False)
    local, remote = sock.getsockname(), sock.getpeername()
    log.write("connect", conn=attempt, started=started, connect_ms=round((time.time() - started) * 1000, 3),
              local=local[0], local_port=local[1], remote=remote[0], remote_port=remote[1])
    return sock


def run_sender(args: argparse.Namespace, log: EventLog, stop: StopCondition) -> dict[str, object]:
    """Write a record every interval over one connection (or a series of them with --reconnect)."""
    interval = args.interval_ms / 1000.0
    seq = attempt = stalled = 0
    sock: socket.socket | None = None
    pending = bytearray()
    ever_connected = False
    next_try = next_tick = next_mark = time.monotonic()

    def broken(reason: dict[str, object]) -> None:
        nonlocal sock
        assert sock is not None
        log.write("broken", conn=attempt, unsent=len(pending) // max(args.size, RECORD.size), **reason)
        sock.close()
        sock = None
        pending.clear()

    while not stop:
        now = time.monotonic()
        if sock is None:
            if ever_connected and not args.reconnect:
                break
            if now < next_try:
                time.sleep(min(next_try - now, stop.remaining(), 0.05))
                continue
            attempt += 1
            sock = connect(args, attempt, log)
            if sock is None:
                next_try = time.monotonic() + args.retry_ms / 1000.0
                continue
            ever_connected = True
            next_tick = time.monotonic()
        while next_tick <= time.monotonic():
            if len(pending) < args.max_backlog:
                pending += encode_record(attempt, seq, time.time(), args.size)
                seq += 1
            else:
                stalled += 1
            next_tick += interval
        if time.monotonic() >= next_mark:
            log.write("mark", seq=seq, conn=attempt)
            next_mark += MARK_EVERY
        try:
            if pending:
                del pending[:sock.send(pending)]
        except BlockingIOError:
            pass
        except OSError as exc:
            broken(os_error_fields(exc))
            next_try = time.monotonic() + args.retry_ms / 1000.0
            continue
        wait = max(0.0, min(next_tick - time.monotonic(), 0.05, stop.remaining()))
        if readable_within(sock, bool(pending), wait):
            try:
                if sock.recv(4096) == b"":
                    broken({"error": "peer-closed"})
                    next_try = time.monotonic() + args.retry_ms / 1000.0
            except BlockingIOError:
                pass
            except OSError as exc:
                broken(os_error_fields(exc))
                next_try = time.monotonic() + args.retry_ms / 1000.0
    if sock is not None:
        log.write("close", conn=attempt, unsent=len(pending) // max(args.size, RECORD.size))
        sock.close()
    return {"sent": seq, "attempts": attempt, "stalled": stalled}


def readable_within(sock: socket.socket, want_write: bool, timeout: float) -> bool:
    """Wait until ``sock`` is readable (or writable, if asked) or ``timeout`` passes; True if readable."""
    with selectors.DefaultSelector() as sel:
        sel.register(sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if want_write else 0))
        ready = sel.select(timeout)
    return bool(ready and ready[0][1] & selectors.EVENT_READ)


IPPROTO_MPTCP = 262  # Linux >= 5.6; a plain TCP peer falls back transparently


def listen_socket(bind: str, port: int, mptcp: bool = False) -> socket.socket:
    """A listening TCP socket on exactly ``bind`` (v6-only for IPv6, so one address means one family)."""
    sock = socket.socket(family_of(bind), socket.SOCK_STREAM, IPPROTO_MPTCP if mptcp else 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if sock.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind((bind, port))
    sock.listen(16)
    sock.setblocking(False)
    return sock


def run_receiver(args: argparse.Namespace, log: EventLog, stop: StopCondition) -> dict[str, object]:
    """Accept any number of connections and log every record with its receive time."""
    server = listen_socket(args.bind, args.port, args.mptcp)
    log.write("listen", addr=args.bind, port=server.getsockname()[1])
    buffers: dict[socket.socket, tuple[bytearray, str]] = {}
    records = accepted = 0
    # one receive buffer for every read: recv(65536) mallocs a fresh 64 KiB each time and shrinks it to what
    # arrived, and under a flapping link those chunks left holes that grew glibc's heap (RSS +60-90 kB/min)
    chunk = memoryview(bytearray(RECV_SIZE))
    with selectors.DefaultSelector() as sel:
        sel.register(server, selectors.EVENT_READ)
        while not stop:
            for key, _ in sel.select(min(0.05, stop.remaining())):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is server:
                    conn, peer = server.accept()
                    conn.setblocking(False)
                    accepted += 1
                    buffers[conn] = (bytearray(), peer[0])
                    sel.register(conn, selectors.EVENT_READ)
                    log.write("accept", peer=peer[0], peer_port=peer[1], local=conn.getsockname()[0])
                    continue
                buf, peer = buffers[sock]
                end, n = None, 0
                try:
                    n = sock.recv_into(chunk)
                    if not n:
                        end = {"ev": "eof"}
                except BlockingIOError:
                    continue
                except OSError as exc:
                    end = {"ev": "reset", **os_error_fields(exc)}
                now = time.time()
                buf += chunk[:n]
                try:
                    for conn_id, seq, sent in decode_records(buf):
                        log.write("rec", t=now, conn=conn_id, seq=seq, ts=round(sent, 6))
                        records += 1
                except ValueError as exc:
                    end = {"ev": "garbage", "error": str(exc)}
                if end:
                    log.write(str(end.pop("ev")), peer=peer, **end)
                    sel.unregister(sock)
                    sock.close()
                    del buffers[sock]
    for sock in buffers:
        sock.close()
    server.close()
    return {"records": records, "accepted": accepted}


def parser() -> argparse.ArgumentParser:
    p, roles = agent_parser("tcpseq", __doc__)
    recv = roles.add_parser("recv", parents=[common_options()],
                            help="accept connections, log every record with its receive time")
    recv.add_argument("--bind", required=True, help="local address to listen on (literal IPv6/IPv4)")
    recv.add_argument("--mptcp", action="store_true", help="listen with a Multipath TCP socket")
    recv.add_argument("--port", type=int, required=True, help="TCP port (0 = any; the listen event says which)")
    send = roles.add_parser("send", parents=[common_options()],
                            help="connect and write a sequenced record every --interval-ms")
    send.add_argument("--dst", required=True, help="receiver address (literal)")
    send.add_argument("--mptcp", action="store_true", help="open a Multipath TCP socket (kernel MPTCP)")
    send.add_argument("--port", type=int, required=True)
    send.add_argument("--src", default=None, help="source address to bind (which of the host's addresses)")
    send.add_argument("--interval-ms", type=float, default=10.0, help="ms between records (default 10)")
    send.add_argument("--size", type=int, default=64, help=f"record size in bytes (min {RECORD.size})")
    send.add_argument("--reconnect", action="store_true",
                      help="open a new connection after one breaks (the first one is always retried until it works)")
    send.add_argument("--retry-ms", type=float, default=100.0, help="ms between connection attempts (default 100)")
    send.add_argument("--connect-timeout-ms", type=float, default=1000.0, help="ms per connection attempt (default 1000)")
    send.add_argument("--user-timeout-ms", type=int, default=0,
                      help="TCP_USER_TIMEOUT ms: declare the connection broken after this long unacked")
    send.add_argument("--max-backlog", type=int, default=4 << 20, help="bytes queued in the app before it stalls")
    return p


def main(argv: list[str] | None = None) -> int:
    return run_agent("tcpseq", parser(), {"send": run_sender, "recv": run_receiver}, argv)


if __name__ == "__main__":
    raise SystemExit(main())
