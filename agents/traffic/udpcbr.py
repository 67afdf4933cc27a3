"""UDP constant bit rate with sequence numbers: loss, reordering and duplicates, packet by packet.

The sender emits a datagram every ``--interval-ms`` (or ``--rate`` per second) on a fixed schedule (no catch-up bursts after a stall),
each carrying a sequence number and its send time; it logs a ``mark`` (sequence -> time) every second
and send errors as they start and stop (an unreachable route shows up as ENETUNREACH, not as silence).
The receiver logs every packet with its receive time.

    python -m agents.traffic.udpcbr recv --bind ::1 --port 5002 --log r.jsonl --duration 10
    python -m agents.traffic.udpcbr send --dst ::1 --port 5002 --interval-ms 5 --log s.jsonl --duration 10
"""

from __future__ import annotations

import argparse
import selectors
import socket
import struct
import time

from .common import EventLog, StopCondition, agent_parser, common_options, family_of, run_agent, os_error_fields

PACKET = struct.Struct("!4sQd")  # magic, sequence, send time
MAGIC = b"MHUC"
MARK_EVERY = 1.0


def encode_packet(seq: int, sent: float, size: int) -> bytes:
    return PACKET.pack(MAGIC, seq, sent).ljust(max(size, PACKET.size), b"\0")


def decode_packet(data: bytes) -> tuple[int, float] | None:
    """(sequence, send time), or None for a datagram that is not ours."""
    if len(data) < PACKET.size:
        return None
    magic, seq, sent = PACKET.unpack_from(data)
    return (seq, sent) if magic == MAGIC else None


def run_sender(args: argparse.Namespace, log: EventLog, stop: StopCondition) -> dict[str, object]:
    """Send on schedule; an error streak is logged once when it starts and once when it ends."""
    sock = socket.socket(family_of(args.dst), socket.SOCK_DGRAM)
    if args.src:
        sock.bind((args.src, 0))
    period = args.interval_ms / 1000.0 if args.interval_ms else 1.0 / (args.rate or 100.0)
    seq = errors = 0
    streak: dict[str, object] | None = None
    next_send = next_mark = time.monotonic()
    while not stop:
        now = time.monotonic()
        if now < next_send:
            time.sleep(min(next_send - now, stop.remaining()))
            continue
        if now - next_send > 1.0:  # the process was paused: resume the schedule, do not burst
            next_send = now
        if now >= next_mark:
            log.write("mark", seq=seq)
            next_mark += MARK_EVERY
        try:
            sock.sendto(encode_packet(seq, time.time(), args.size), (args.dst, args.port))
            if streak is not None:
                log.write("error_end", seq=seq, **streak)
                streak = None
        except OSError as exc:
            errors += 1
            fields = os_error_fields(exc)
            if streak is None or streak.get("error") != fields["error"]:
                log.write("error", seq=seq, **fields)
                streak = {"error": fields["error"], "since_seq": seq}
        seq += 1
        next_send += period
    sock.close()
    return {"sent": seq, "send_errors": errors, "interval_ms": round(period * 1000, 6)}


def run_receiver(args: argparse.Namespace, log: EventLog, stop: StopCondition) -> dict[str, object]:
    """Log every datagram of ours with its receive time and source address."""
    sock = socket.socket(family_of(args.bind), socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.bind, args.port))
    sock.setblocking(False)
    log.write("listen", addr=args.bind, port=sock.getsockname()[1])
    received = 0
    with selectors.DefaultSelector() as sel:
        sel.register(sock, selectors.EVENT_READ)
        while not stop:
            if not sel.select(min(0.05, stop.remaining())):
                continue
            while True:
                try:
                    data, peer = sock.recvfrom(65536)
                except BlockingIOError:
                    break
                decoded = decode_packet(data)
                if decoded is None:
                    continue
                received += 1
                log.write("rec", seq=decoded[0], ts=round(decoded[1], 6), src=peer[0])
    sock.close()
    return {"received": received}


def parser() -> argparse.ArgumentParser:
    p, roles = agent_parser("udpcbr", __doc__)
    recv = roles.add_parser("recv", parents=[common_options()], help="log every datagram with its receive time")
    recv.add_argument("--bind", required=True, help="local address (literal)")
    recv.add_argument("--port", type=int, required=True, help="UDP port (0 = any; the listen event says which)")
    send = roles.add_parser("send", parents=[common_options()], help="send sequenced datagrams at a constant rate")
    send.add_argument("--dst", required=True, help="receiver address (literal)")
    send.add_argument("--port", type=int, required=True)
    send.add_argument("--src", default=None, help="source address to bind (which of the host's addresses)")
    pace = send.add_mutually_exclusive_group()
    pace.add_argument("--interval-ms", type=float, default=None, help="ms between datagrams (default 10)")
    pace.add_argument("--rate", type=float, default=None, help="datagrams per second instead of --interval-ms")
    send.add_argument("--size", type=int, default=64, help=f"datagram payload bytes (min {PACKET.size})")
    return p


def main(argv: list[str] | None = None) -> int:
    return run_agent("udpcbr", parser(), {"send": run_sender, "recv": run_receiver}, argv)


if __name__ == "__main__":
    raise SystemExit(main())
