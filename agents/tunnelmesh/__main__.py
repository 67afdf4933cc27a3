"""``python3 -m agents.tunnelmesh --own P=A --foreign P=A ... --ready FILE``: run on an exit router.

Event-driven: ``ip -6 monitor route link`` wakes it on every route or link change (the IGP adding or withdrawing an
anycast /128, BGP its default), then one ``sync.plan`` step runs; its own changes wake it once more and
find nothing to do.  Every change is printed with a wall-clock time stamp (the node's ``tunnelmesh.out``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from .sync import Pair, plan


def routes() -> list[dict]:
    out = subprocess.run(["ip", "-j", "-6", "route", "show", "table", "main"], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out or "[]")


def first_up(devs: list[str]) -> str | None:
    """The first of ``devs`` whose link is up (the decapsulation route's interface)."""
    for dev in devs:
        try:
            if Path(f"/sys/class/net/{dev}/operstate").read_text().strip() == "up":
                return dev
        except OSError:
            continue
    return None


def step(own: list[Pair], foreign: list[Pair], devs: list[str]) -> None:
    for cmd in plan(routes(), own, foreign, first_up(devs)):
        res = subprocess.run(cmd, capture_output=True, text=True)
        print(f"{time.time():.3f} {' '.join(cmd[2:])}" + (f" FAILED: {res.stderr.strip()}" if res.returncode
                                                          else ""), flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m agents.tunnelmesh", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--own", action="append", default=[], type=Pair.parse, metavar="PREFIX=ANYCAST",
                   help="a prefix of this exit's ISP and its anycast address (decapsulated here)")
    p.add_argument("--foreign", action="append", default=[], type=Pair.parse, metavar="PREFIX=ANYCAST",
                   help="another ISP's prefix, tunnelled to its anycast address while the IGP has it")
    p.add_argument("--dev", action="append", default=[], help="internal interfaces, in order of preference, "
                   "for the decapsulation route (the first one up is used)")
    p.add_argument("--ready", type=Path, help="file created after the first synchronisation")
    args = p.parse_args(argv)
    monitor = subprocess.Popen(["ip", "-6", "monitor", "route", "link"], stdout=subprocess.PIPE, text=True)
    step(args.own, args.foreign, args.dev)
    if args.ready:
        args.ready.write_text("ready\n")
    for _ in monitor.stdout:
        step(args.own, args.foreign, args.dev)
    return monitor.wait()


if __name__ == "__main__":
    sys.exit(main())
