"""The control-socket protocol: one JSON object per line in, one per line out.

Kept apart from the daemon's I/O so it can be tested without sockets.  Requests:

=====================================================  ==============================================
``{"cmd": "status"}``                                  ULIDs, locators, profile, policy, counters
``{"cmd": "contexts"}``                                one object per context (state, tags, locators)
``{"cmd": "pairs"}``                                   every locator pair with its fig. 21 state
``{"cmd": "events", "since": T}``                      events after T seconds (daemon clock)
``{"cmd": "connect", "peer": A, "local": L}``          declare a flow; policy decides when (L optional)
``{"cmd": "observe", "local": L, "peer": A,``          report a data packet (when no sniffer runs)
``"direction": "out"|"in"}``
``{"cmd": "signal", "kind": K, "locator"|"prefix": X}``  K: interface-down|up, prefix-deprecated|valid
``{"cmd": "icmp", "kind": "unreachable"|"parameter-problem", "local": L, "peer": A}``
``{"cmd": "locators", "locators": [A, ...]}``          local locators changed: Update Request to peers
``{"cmd": "shutdown"}``                                stop the daemon
=====================================================  ==============================================

Every answer is ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "..."}``.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from .actions import Action
from .datapath import DataPath
from .engine import ShimEngine

Address = ipaddress.IPv6Address


class ControlError(ValueError):
    """A request the daemon cannot honour (reported to the client, never fatal)."""


def _addr(request: dict[str, Any], key: str, required: bool = True) -> Address | None:
    value = request.get(key)
    if value is None:
        if required:
            raise ControlError(f"missing {key!r}")
        return None
    try:
        return Address(value)
    except ValueError as exc:
        raise ControlError(f"{key!r}: {exc}") from exc


def _prefix(request: dict[str, Any]) -> bytes:
    text = request.get("prefix")
    if not text:
        raise ControlError("missing 'prefix'")
    try:
        return ipaddress.IPv6Network(text, strict=False).network_address.packed[:8]
    except ValueError as exc:
        raise ControlError(str(exc)) from exc


def handle(engine: ShimEngine, now: float, request: dict[str, Any], datapath: DataPath | None = None,
           observer: dict[str, int] | None = None, loop: dict[str, int] | None = None) -> tuple[Any, list[Action]]:
    """Run one request; returns the result and the actions it caused (packets to send).

    ``observer``: the packet observer's counters (None when the daemon runs without one); ``loop``:
    what the daemon's main loop did (wake-ups, counter polls, sock_diag requests, quiet spells)."""
    cmd = request.get("cmd")
    datapath = datapath or DataPath()
    if cmd == "status":
        return {**engine.status(), "datapath": {"mode": datapath.mode, **datapath.stats()},
                "observer": dict(observer) if observer is not None else None,
                "loop": dict(loop) if loop is not None else None}, []
    if cmd == "contexts":
        views = engine.contexts_view()
        for view in views:
            view["datapath"] = datapath.describe((Address(view["local_ulid"]), Address(view["peer_ulid"])))
        return views, []
    if cmd == "pairs":
        return engine.pairs_view(), []
    if cmd == "events":
        return engine.events_view(request.get("since")), []
    if cmd == "connect":
        peer, local = _addr(request, "peer"), _addr(request, "local", required=False)
        if engine.policy.kind == "immediate" or request.get("now"):
            try:
                return {"started": True}, engine.connect(now, peer, local)
            except ValueError as exc:
                raise ControlError(str(exc)) from exc
        return {"started": False, "policy": str(engine.policy)}, engine.observe(now, local or engine.identity.ulids[0], peer, True)
    if cmd == "observe":
        outgoing = request.get("direction", "out") == "out"
        return {}, engine.observe(now, _addr(request, "local"), _addr(request, "peer"), outgoing)
    if cmd == "signal":
        kind = request.get("kind")
        by_locator = {"interface-down": engine.interface_down, "interface-up": engine.interface_up}
        by_prefix = {"prefix-deprecated": engine.prefix_deprecated, "prefix-valid": engine.prefix_valid}
        if kind in by_locator:
            return {}, by_locator[kind](now, _addr(request, "locator"))
        if kind in by_prefix:
            return {}, by_prefix[kind](now, _prefix(request))
        raise ControlError(f"unknown signal {kind!r}")
    if cmd == "icmp":
        if request.get("kind") == "parameter-problem":
            return {}, engine.icmp_parameter_problem(now, _addr(request, "peer"))
        return {}, engine.icmp_unreachable(now, _addr(request, "local"), _addr(request, "peer"))
    if cmd == "shutdown":
        return {"stopping": True}, []
    if cmd == "locators":
        locators = [Address(a) for a in request.get("locators", [])]
        if not locators:
            raise ControlError("'locators' must list at least one address")
        return {}, engine.set_local_locators(now, locators)
    raise ControlError(f"unknown command {cmd!r}")


def answer(engine: ShimEngine, now: float, line: bytes, datapath: DataPath | None = None,
           observer: dict[str, int] | None = None, loop: dict[str, int] | None = None) -> tuple[bytes, list[Action], bool]:
    """Parse one request line; the response line, the actions, and whether to stop (never raises)."""
    try:
        request = json.loads(line)
        if not isinstance(request, dict):
            raise ControlError("a request is a JSON object")
        result, actions = handle(engine, now, request, datapath, observer, loop)
        stop = request.get("cmd") == "shutdown"
        return json.dumps({"ok": True, "result": result}).encode() + b"\n", actions, stop
    except (ControlError, ValueError) as exc:
        return json.dumps({"ok": False, "error": str(exc)}).encode() + b"\n", [], False
