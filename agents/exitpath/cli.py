"""``exitpathctl``: ask a running exit path agent for its cache, status, flows or events."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from agents.jsonctl import request

DEFAULT_SOCKET = os.environ.get("EXITPATH_SOCKET", "/tmp/exitpath.sock")

EXAMPLES = """\
examples:
  exitpathctl cache                         # destination -> source, how it was learned, time left
  exitpathctl --socket /run/mhlab/LAB/nodes/h1/exitpath.sock status   # counters (engine and kernel)
  exitpathctl flows                         # flows the kernel raced or rewrote
  exitpathctl events --since 1234.5         # races, winners, timeouts, expiries after that time
  exitpathctl lookup 2001:db8:f000::10      # steps 1-2 for one destination
  exitpathctl cache --json                  # for scripts and tests

inside a lab:  mhlab exec LAB h1 -- exitpathctl --socket /run/mhlab/LAB/nodes/h1/exitpath.sock cache
"""


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    if not rows:
        return "(none)"
    cells = [[str(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths))]
    return "\n".join(lines + ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells])


def show(cmd: str, result: Any, as_json: bool) -> str:
    if as_json or cmd in ("status", "lookup", "shutdown"):
        return json.dumps(result, indent=2)
    if cmd == "cache":
        return table(result, ["dst", "src", "how", "age", "expires_in", "locked"])
    if cmd == "flows":
        return table(result, ["local", "lport", "peer", "pport", "proto", "state", "src"])
    return "\n".join(f"{e.pop('time'):>12.3f}  {e.pop('kind'):<8} {json.dumps(e)}" for e in result) or "(none)"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="exitpathctl", description="Inspect a running exit path cache agent "
                                "(thesis 6.3.1.2).", epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--socket", default=DEFAULT_SOCKET, help=f"agent control socket (default {DEFAULT_SOCKET}, "
                                                            "or $EXITPATH_SOCKET)")
    sub = p.add_subparsers(dest="cmd", required=True)
    for name, text in [("cache", "the exit path cache: one line per destination"),
                       ("status", "sources, timing, counters of the engine and the kernel programs"),
                       ("flows", "flows the kernel raced (copies per source) or rewrote"),
                       ("shutdown", "stop the agent: programs detached, route hints removed")]:
        s = sub.add_parser(name, help=text, description=text)
        s.add_argument("--json", action="store_true", help="print JSON")
    ev = sub.add_parser("events", help="races, winners, timeouts, updates, expiries")
    ev.add_argument("--since", type=float, help="only events after this time (the agent's monotonic clock)")
    ev.add_argument("--json", action="store_true", help="print JSON")
    lk = sub.add_parser("lookup", help="the cached source for one destination (steps 1-2)")
    lk.add_argument("dst")
    lk.add_argument("--json", action="store_true", help="print JSON")
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    payload: dict[str, Any] = {"cmd": args.cmd}
    if args.cmd == "events" and args.since is not None:
        payload["since"] = args.since
    if args.cmd == "lookup":
        payload["dst"] = args.dst
    try:
        print(show(args.cmd, request(args.socket, payload), args.json))
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"exitpathctl: {exc}", file=sys.stderr)
        sys.exit(1)
    sys.exit(0)
