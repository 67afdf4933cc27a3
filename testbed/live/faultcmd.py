"""`mhlab fault LAB KIND ...`, `mhlab faults LAB`, `mhlab restore LAB [NAME|--all]`: break a running lab by
hand, see what is broken, and mend it - from any shell (the journal of the lab keeps track)."""

from __future__ import annotations

import argparse
import json
import sys
import time

from ..faults import FaultError
from ..lab import Lab
from .faultlog import in_force
from .faultops import apply_fault, restore, select
from .faultspec import FaultWordsError, fault_from_words, usage_lines
from .links import LinkWordError, fault_link_ref

FAULT_EPILOG = """\
kinds (positional words, then any other field of the scenario language as FIELD=VALUE):
  {kinds}

links are named as you think of them: a segment (ispa-ra), either order (ra-ispa), a node pair (ra,ispa),
or one port (h1:lan).  A fault stays in force until `mhlab restore`, or for --for SECONDS.

examples:
  sudo mhlab fault twoisp link-down ispa-ra             ISP A's access link goes down
  sudo mhlab fault twoisp loss ra-ispa 30% --for 20     30 % loss for 20 s, then undone by itself
  sudo mhlab fault twoisp rate-limit ispa-ra 1mbit direction=forward
  sudo mhlab fault twoisp flap ispa-ra 4 1              down 1 s every 4 s
  sudo mhlab fault twoisp upstream-cut ispa             ISP A loses transit; the site sees nothing
  sudo mhlab fault twoisp daemon-kill ra bgpd           (restore restarts it)
  sudo mhlab fault twoisp bgp-reset ra ispa             one-shot: nothing to restore
  sudo mhlab faults twoisp                              what is in force
  sudo mhlab restore twoisp --all
"""


def _words_error(exc: Exception) -> int:
    print(f"error: {exc}", file=sys.stderr)
    return 2


def cmd_fault(args: argparse.Namespace) -> int:
    lab = Lab.attach(args.lab, args.run_root)
    try:
        fault = fault_from_words(args.kind, args.words, name=args.name or "", until=args.for_,
                                 link_ref=lambda w: fault_link_ref(lab.net, w))
    except (FaultWordsError, LinkWordError) as exc:
        return _words_error(exc)
    try:
        done = apply_fault(lab, fault, " ".join([args.kind, *args.words]), args.for_)
    except FaultError as exc:
        return _words_error(exc)
    if not done.held:
        print(f"done: {done.describe} (one-shot: nothing to restore)")
        return 0
    until = f" for {args.for_:g} s" if args.for_ else f"; undo: mhlab restore {lab.name} {done.name}"
    print(f"fault {done.name} in force{until}: {done.describe}")
    return 0


def faults_table(lab: Lab) -> str:
    entries = in_force(lab.rundir)
    if not entries:
        return f"no faults in force on lab {lab.name}"
    now = time.time()
    rows = [("NAME", "STATE", "SINCE", "LEFT", "WHAT")]
    for e in entries:
        left = e.remaining(now)
        rows.append((e.name, e.state, f"{now - e.started:.0f}s", "-" if left is None else f"{left:.0f}s",
                     e.describe or e.words))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4] for r in rows)


def cmd_faults(args: argparse.Namespace) -> int:
    lab = Lab.attach(args.lab, args.run_root)
    if args.json:
        print(json.dumps([e.as_dict() for e in in_force(lab.rundir)], indent=2))
    else:
        print(faults_table(lab))
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    lab = Lab.attach(args.lab, args.run_root)
    if not args.all and not args.which:
        print("error: name a fault (see `mhlab faults " + lab.name + "`) or give --all", file=sys.stderr)
        return 2
    entries = select(lab, None if args.all else args.which)
    if not entries:
        print(f"no faults in force on lab {lab.name}")
    for e in entries:
        how = restore(lab, e)
        print(f"fault {e.name} undone ({how}): {e.describe or e.words}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the fault, faults and restore verbs to the mhlab command."""
    f = sub.add_parser("fault", help="break a running lab now: any fault kind of the scenario language",
                       description="Apply one fault to a running lab; it stays in force until `mhlab restore` "
                       "(or --for SECONDS).", epilog=FAULT_EPILOG.format(kinds="\n  ".join(usage_lines())),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    f.add_argument("lab", help="lab name (see `mhlab list`)")
    f.add_argument("kind", help="fault kind: link-down, isp-down, upstream-cut, loss, rate-limit, flap, delay, "
                                "router-crash, daemon-kill, bgp-reset, link-up")
    f.add_argument("words", nargs="*", help="the kind's fields: positional words, then FIELD=VALUE")
    f.add_argument("--for", dest="for_", type=float, metavar="SECONDS", help="undo it by itself after SECONDS")
    f.add_argument("--name", help="name to restore it by (default KIND-TARGET, e.g. link-down-ispa-ra)")
    f.set_defaults(fn=cmd_fault)

    fs = sub.add_parser("faults", help="faults in force on a running lab (applied by `mhlab fault`)",
                        description="List the faults in force on a lab: name, state, age, time left, what.",
                        epilog="example:\n  sudo mhlab faults twoisp --json",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    fs.add_argument("lab", help="lab name")
    fs.add_argument("--json", action="store_true", help="machine-readable output")
    fs.set_defaults(fn=cmd_faults)

    r = sub.add_parser("restore", help="undo faults in force (by name, by link/ISP/node, or --all)",
                       description="Undo faults applied by `mhlab fault`, from any shell.",
                       epilog="examples:\n  sudo mhlab restore twoisp link-down-ispa-ra\n"
                              "  sudo mhlab restore twoisp ispa-ra      every fault on that link\n"
                              "  sudo mhlab restore twoisp --all",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("lab", help="lab name")
    r.add_argument("which", nargs="?", help="fault name, or what it acts on (ispa-ra, ispa, ra)")
    r.add_argument("--all", action="store_true", help="every fault in force")
    r.set_defaults(fn=cmd_restore)
