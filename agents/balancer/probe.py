"""Steady-rate request/reply probe against the multihomed Destination, through i2pd's SAM bridge.

Every ``--every`` ms it sends one repliable datagram ``probe <seq>`` to the Destination (whose echo
backend answers through whichever hosting router received it) and logs, per request, one JSON line:
``{"ev": "request", "seq", "sent", "ok", "rtt_ms"}`` once answered, or ``ok: false`` after ``--timeout``
seconds (a reply arriving later is logged as ``late``).  ``--renew-after K`` opens a new session after K
requests lost in a row, as an application would (see docs/i2p-proposal-140.md: an existing end-to-end
session does not survive the loss of the hosting router that holds its ratchet state).  Same log shape and stop rules as
``agents.traffic`` (``--log``, ``--duration``, SIGTERM).

    python -m agents.balancer.probe --dest BASE64 --every 500 --timeout 8 --log probe.jsonl
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Sequence

from agents.traffic.common import EventLog, StopCondition, common_options

from .sam import SamDatagramSession, SamError, wait_bridge

# the client's own Destination: 1-hop inbound tunnels, 0-hop outbound (i2pd 2.45.1: a destination whose
# inbound tunnels are ready before its outbound ones does not publish its LeaseSet for ~10 minutes)
CLIENT_OPTIONS = {"inbound.length": "1", "inbound.quantity": "2", "outbound.length": "0",
                  "outbound.quantity": "2", "i2cp.leaseSetEncType": "4"}


def parse_reply_seq(payload: bytes) -> int | None:
    words = payload.split()
    if len(words) == 2 and words[0] == b"probe" and words[1].isdigit():
        return int(words[1])
    return None


def open_session(args: argparse.Namespace, log: EventLog, stop: StopCondition, n: int) -> SamDatagramSession:
    host, _, port = args.sam.rpartition(":")
    session = SamDatagramSession(f"probe{os.getpid()}x{n}", host, int(port), CLIENT_OPTIONS)
    t0 = time.monotonic()
    session.open(timeout=min(args.session_timeout, stop.remaining()))
    log.write("session", n=n, setup_s=round(time.monotonic() - t0, 3))
    return session


def run(args: argparse.Namespace, log: EventLog, stop: StopCondition) -> dict[str, int]:
    host, _, port = args.sam.rpartition(":")
    wait_bridge(host, int(port), min(60.0, stop.remaining()))
    pool = ThreadPoolExecutor(max_workers=1)
    counts = {"sent": 0, "ok": 0, "lost": 0, "late": 0, "sessions": 1}
    session = open_session(args, log, stop, 1)
    # --spare: a second session kept ready, so failing over does not wait for i2pd's SAM readiness check
    # (its SESSION CREATE answers 20 s later whenever the tunnels are not there at once)
    spare: Future[SamDatagramSession] | None = pool.submit(open_session, args, log, stop, 2) if args.spare else None
    outstanding: dict[int, float] = {}  # seq -> wall-clock send time
    period = args.every / 1000.0
    next_send = time.monotonic()
    lost_in_row = 0
    try:
        while not stop:
            now = time.time()
            if args.renew_after and lost_in_row >= args.renew_after:
                # the application's own failover: another session (new Destination, new tunnels, a fresh
                # LeaseSet lookup, a fresh end-to-end ratchet session); requests due meanwhile count as lost
                log.write("renew", after_lost=lost_in_row)
                session.close()
                for seq, sent in outstanding.items():
                    log.write("request", seq=seq, sent=round(sent, 6), ok=False)
                    counts["lost"] += 1
                outstanding.clear()
                counts["sessions"] += 1
                if spare is not None:
                    session = spare.result()
                    spare = pool.submit(open_session, args, log, stop, counts["sessions"] + 1)
                else:
                    session = open_session(args, log, stop, counts["sessions"])
                while next_send < time.monotonic():
                    counts["sent"] += 1
                    counts["lost"] += 1
                    log.write("request", seq=counts["sent"], sent=round(time.time(), 6), ok=False, skipped=True)
                    next_send += period
                lost_in_row = 0
                continue
            if time.monotonic() >= next_send:
                counts["sent"] += 1
                outstanding[counts["sent"]] = now
                session.send(args.dest, f"probe {counts['sent']}".encode())
                next_send += period
            for seq in [s for s, sent in outstanding.items() if now - sent > args.timeout]:
                log.write("request", seq=seq, sent=round(outstanding.pop(seq), 6), ok=False)
                counts["lost"] += 1
                lost_in_row += 1
            got = session.receive(max(0.0, min(next_send - time.monotonic(), stop.remaining(), 0.2)))
            if got is None:
                continue
            seq = parse_reply_seq(got[1])
            if seq is None:
                continue
            if seq in outstanding:
                sent = outstanding.pop(seq)
                log.write("request", seq=seq, sent=round(sent, 6), ok=True,
                          rtt_ms=round((time.time() - sent) * 1000, 3))
                counts["ok"] += 1
                lost_in_row = 0
            else:
                log.write("late", seq=seq)
                counts["late"] += 1
    finally:
        session.close()
        if spare is not None:
            spare.add_done_callback(lambda f: f.exception() is None and f.result().close())
        pool.shutdown(wait=False, cancel_futures=True)
    return counts


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m agents.balancer.probe", description=__doc__,
                                parents=[common_options()], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dest", required=True, help="the Destination, full I2P base64")
    p.add_argument("--sam", default="127.0.0.1:7656", help="SAM bridge HOST:PORT (datagrams to PORT-1)")
    p.add_argument("--every", type=float, default=500.0, help="milliseconds between requests")
    p.add_argument("--timeout", type=float, default=8.0, help="seconds before a request counts as lost")
    p.add_argument("--session-timeout", type=float, default=120.0, help="seconds to wait for SAM tunnels")
    p.add_argument("--renew-after", type=int, default=0,
                   help="open a new SAM session after this many requests lost in a row (0: never)")
    p.add_argument("--spare", action="store_true", help="keep a second session ready for --renew-after")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    stop = StopCondition(args.duration)
    with EventLog(args.log, "i2p-probe", "client", args.flow) as log:
        try:
            counts = run(args, log, stop)
        except (SamError, OSError) as exc:
            log.close(reason="error", error=str(exc))
            return 1
        log.close(reason=stop.reason, **counts)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
