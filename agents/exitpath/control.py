"""The control-socket protocol of the exit path agent: one JSON object per line in, one out.

Kept apart from the daemon's I/O so it can be tested without sockets.  Requests:

=======================================  =============================================================
``{"cmd": "status"}``                    sources, timing, counters (engine and kernel), devices
``{"cmd": "cache"}``                     one object per valid entry: dst, src, how, age, expires_in
``{"cmd": "flows"}``                     flows the kernel raced or rewrote (state, source they use)
``{"cmd": "events", "since": T}``        events after T seconds (daemon clock: CLOCK_MONOTONIC)
``{"cmd": "lookup", "dst": A}``          steps 1-2 for one destination: its cached source or null
``{"cmd": "shutdown"}``                  stop the daemon (programs detached, route hints removed)
=======================================  =============================================================

Every answer is ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "..."}``.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import asdict
from typing import Any, Protocol

from .engine import ExitPathCache


class ControlError(ValueError):
    """A request the daemon cannot honour (reported to the client, never fatal)."""


class KernelView(Protocol):
    devices: tuple[str, ...]

    def stats(self) -> dict[str, int]: ...

    def flows(self) -> list: ...


def handle(engine: ExitPathCache, now: float, request: dict[str, Any], kernel: KernelView | None = None) -> Any:
    cmd = request.get("cmd")
    if cmd == "status":
        status = engine.status(now)
        if kernel is not None:
            status["kernel"] = {"devices": list(kernel.devices), **kernel.stats()}
        return {**status, "time": round(now, 3)}
    if cmd == "cache":
        return engine.cache_view(now)
    if cmd == "flows":
        return [{k: str(v) if isinstance(v, ipaddress.IPv6Address) else v for k, v in asdict(f).items()}
                for f in (kernel.flows() if kernel is not None else [])]
    if cmd == "events":
        since = request.get("since")
        if since is not None and not isinstance(since, (int, float)):
            raise ControlError("'since' must be a number of seconds")
        return engine.events_view(since)
    if cmd == "lookup":
        try:
            dst = ipaddress.IPv6Address(request.get("dst", ""))
        except ValueError as exc:
            raise ControlError(f"'dst': {exc}") from exc
        src = engine.lookup(now, dst)
        return {"dst": str(dst), "src": str(src) if src else None}
    if cmd == "shutdown":
        return {"stopping": True}
    raise ControlError(f"unknown command {cmd!r} (status, cache, flows, events, lookup, shutdown)")


def answer(engine: ExitPathCache, now: float, line: bytes, kernel: KernelView | None = None) -> tuple[bytes, bool]:
    """Parse one request line; the response line and whether to stop (never raises)."""
    try:
        request = json.loads(line)
        if not isinstance(request, dict):
            raise ControlError("a request is a JSON object")
        result = handle(engine, now, request, kernel)
        return json.dumps({"ok": True, "result": result}).encode() + b"\n", request.get("cmd") == "shutdown"
    except ValueError as exc:  # ControlError and JSON errors
        return json.dumps({"ok": False, "error": str(exc)}).encode() + b"\n", False
