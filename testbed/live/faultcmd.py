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
from .faultspec import FaultWordsError, fault_from_words
from .links import LinkWordError, fault_link_ref



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
