"""What every traffic agent shares: the JSON-lines event log, the stop condition, address helpers.

Kept in one place so that all agents write the same log shape (``t`` = wall-clock seconds, ``ev`` =
event name) and stop the same way (``--duration`` elapsed or SIGTERM/SIGINT received), which is what
the scenario runner relies on to parse logs and to end a run cleanly.
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import json
import os
import signal
import socket
import sys
import threading
import time
from types import FrameType
from typing import IO, Any

LOG_FORMAT = 1  # bump when an event's meaning changes; written in every "start" event


class EventLog:
    """Line-buffered JSON-lines writer; safe to call from several threads (the HTTP server's)."""

    def __init__(self, path: str, agent: str, role: str, flow: str | None) -> None:
        self._lock = threading.Lock()
        self._own = path != "-"
        self._out: IO[str] = open(path, "a", buffering=1) if self._own else sys.stdout
        self.write("start", agent=agent, role=role, flow=flow, pid=os.getpid(), format=LOG_FORMAT)

    def write(self, ev: str, t: float | None = None, **fields: Any) -> None:
        record = {"t": round(time.time() if t is None else t, 6), "ev": ev, **fields}
        line = json.dumps(record, separators=(",", ":"))
        with self._lock:
            self._out.write(line + "\n")

    def close(self, **fields: Any) -> None:
        """Write the final ``stop`` event (with the agent's totals) and flush."""
        self.write("stop", **fields)
        with self._lock:
            self._out.flush()
            if self._own:
                self._out.close()

    def __enter__(self) -> "EventLog":
        return self

    def __exit__(self, *exc: object) -> None:
        if self._own and not self._out.closed:
            self.close(reason="exception" if exc[0] else "ended")


class StopCondition:
    """True once the duration has elapsed or a SIGTERM/SIGINT arrived; owns no global state beyond the handlers."""

    def __init__(self, duration: float | None) -> None:
        self.started = time.time()
        self.deadline = None if duration is None else time.monotonic() + duration
        self.signal_name: str | None = None
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.signal_name = signal.Signals(signum).name

    @property
    def reason(self) -> str:
        return self.signal_name or "duration"

    def remaining(self) -> float:
        if self.signal_name:
            return 0.0
        return float("inf") if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def __bool__(self) -> bool:
        return self.remaining() <= 0.0


def common_options() -> argparse.ArgumentParser:
    """Options every agent role takes (``--log``, ``--duration``, ``--flow``); use as a parent parser."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--log", default="-", help="JSON-lines event log file ('-' = stdout, default)")
    parser.add_argument("--duration", type=float, default=None,
                        help="stop by itself after this many seconds (default: run until SIGTERM)")
    parser.add_argument("--flow", default=None, help="flow name written into the start event")
    return parser


def agent_parser(module: str, doc: str) -> tuple[argparse.ArgumentParser, Any]:
    """The top parser of an agent (``python -m agents.traffic.<module>``) and its role subparsers."""
    parser = argparse.ArgumentParser(prog=f"python -m agents.traffic.{module}", description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    return parser, parser.add_subparsers(dest="role", required=True)


def family_of(address: str) -> socket.AddressFamily:
    """AF_INET6 or AF_INET for a literal address (agents never resolve names)."""
    return socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET


def os_error_fields(exc: OSError) -> dict[str, Any]:
    """An OSError as log fields: the errno name is what analysis and people read."""
    code = exc.errno
    message = os.strerror(code) if code else str(exc)
    return {"errno": code, "error": errno_name(code) if code else type(exc).__name__, "message": message}


def errno_name(code: int) -> str:
    return errno.errorcode.get(code, str(code))


def run_agent(kind: str, parser: argparse.ArgumentParser, roles: dict[str, Any], argv: list[str] | None) -> int:
    """Every agent's main: parse, run the chosen role until its stop condition, log the totals."""
    args = parser.parse_args(argv)
    stop = StopCondition(args.duration)
    with EventLog(args.log, kind, args.role, args.flow) as log:
        totals = roles[args.role](args, log, stop)
        log.close(reason=stop.reason if stop else "broken", **totals)  # ended before being told to
    return 0
