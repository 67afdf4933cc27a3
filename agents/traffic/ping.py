"""ICMPv6 (or v4) echo through the real ``ping`` binary (iputils), parsed into one event per reply.

``ping -D -O`` prints a timestamp on every line and reports each request left unanswered when the
next one goes out, so a reply, a silent loss and an ICMP error (e.g. "Source address failed
ingress/egress policy", the code-5 unreachable of thesis 6.2.1) each become their own event.

    python -m agents.traffic.ping run --dst ::1 --src ::1 --interval-ms 100 --log p.jsonl --duration 5
"""

from __future__ import annotations

import argparse
import re
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field

from .common import EventLog, StopCondition, agent_parser, common_options, family_of, run_agent

REPLY = re.compile(r"^\[(?P<t>[\d.]+)\] \d+ bytes from (?P<src>\S+?):? icmp_seq=(?P<seq>\d+) "
                   r"ttl=(?P<ttl>\d+) time=(?P<rtt>[\d.]+) ms(?P<dup> \(DUP!\))?")
NO_ANSWER = re.compile(r"^\[(?P<t>[\d.]+)\] no answer yet for icmp_seq=(?P<seq>\d+)")
ICMP_ERROR = re.compile(r"^\[(?P<t>[\d.]+)\] From (?P<src>\S+?):? icmp_seq=(?P<seq>\d+) (?P<msg>.+)$")
SUMMARY = re.compile(r"(?P<tx>\d+) packets transmitted, (?P<rx>\d+) received")


@dataclass
class SeqUnwrapper:
    """iputils' icmp_seq wraps at 65536; keep it increasing so long runs stay comparable."""

    last: int = -1
    base: int = 0
    seen: set[int] = field(default_factory=set)

    def __call__(self, raw: int) -> int:
        seq = raw + self.base
        if self.last >= 0 and seq < self.last - 32768:
            self.base += 65536
            seq += 65536
        self.last = max(self.last, seq)
        return seq


def parse_line(line: str, unwrap: SeqUnwrapper) -> dict[str, object] | None:
    """One output line of ``ping -D -O`` as an event dict (``ev`` and ``t`` included), or None."""
    if m := REPLY.match(line):
        return {"ev": "reply", "t": float(m["t"]), "seq": unwrap(int(m["seq"])), "rtt_ms": float(m["rtt"]),
                "ttl": int(m["ttl"]), "src": m["src"], "dup": bool(m["dup"])}
    if m := NO_ANSWER.match(line):
        return {"ev": "timeout", "t": float(m["t"]), "seq": unwrap(int(m["seq"]))}
    if m := ICMP_ERROR.match(line):
        return {"ev": "icmp_error", "t": float(m["t"]), "seq": unwrap(int(m["seq"])), "src": m["src"],
                "error": m["msg"].strip()}
    if m := SUMMARY.search(line):
        return {"ev": "summary", "t": time.time(), "transmitted": int(m["tx"]), "received": int(m["rx"])}
    return None


def ping_argv(args: argparse.Namespace) -> list[str]:
    """``ping`` with per-line timestamps, outstanding reports, numeric output, optional source."""
    version = "-6" if family_of(args.dst) == socket.AF_INET6 else "-4"
    argv = ["ping", version, "-n", "-D", "-O", "-i", f"{args.interval_ms / 1000:.3f}", "-W", f"{args.timeout_ms / 1000:g}"]
    if args.src:
        argv += ["-I", args.src]
    return argv + [args.dst]


def run_pinger(args: argparse.Namespace, log: EventLog, stop: StopCondition) -> dict[str, object]:
    """Run ping until stopped, logging each parsed line; SIGINT makes ping print its summary."""
    proc = subprocess.Popen(ping_argv(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            bufsize=1)
    assert proc.stdout is not None
    log.write("exec", argv=proc.args)
    unwrap = SeqUnwrapper()
    totals: dict[str, object] = {}
    watcher = threading.Thread(target=interrupt_when_stopped, args=(proc, stop), daemon=True)
    watcher.start()
    for line in proc.stdout:
        event = parse_line(line.rstrip("\n"), unwrap)
        if event is None:
            if line.strip() and not line.startswith(("PING", "---", "rtt", "round-trip")):
                log.write("output", line=line.rstrip("\n"))
            continue
        if event["ev"] == "summary":
            totals.update(transmitted=event["transmitted"], received=event["received"])
            continue
        name = str(event.pop("ev"))
        log.write(name, **event)
    proc.wait()
    watcher.join(timeout=1.0)
    return {"exit": proc.returncode, "interval_ms": args.interval_ms, **totals}


def interrupt_when_stopped(proc: subprocess.Popen[str], stop: StopCondition) -> None:
    """SIGINT ping once the stop condition fires (the main thread is busy reading its output)."""
    while proc.poll() is None:
        if stop:
            proc.send_signal(signal.SIGINT)
            return
        time.sleep(0.02)


def parser() -> argparse.ArgumentParser:
    p, roles = agent_parser("ping", __doc__)
    run = roles.add_parser("run", parents=[common_options()], help="ping --dst, one event per reply/loss/error")
    run.add_argument("--dst", required=True, help="destination address (literal)")
    run.add_argument("--src", default=None, help="source address (ping -I)")
    run.add_argument("--interval-ms", type=float, default=100.0, help="ms between echo requests (default 100)")
    run.add_argument("--timeout-ms", type=float, default=1000.0, help="ms to wait for a reply (ping -W; default 1000)")
    return p


def main(argv: list[str] | None = None) -> int:
    return run_agent("ping", parser(), {"run": run_pinger}, argv)


if __name__ == "__main__":
    raise SystemExit(main())
