"""`mhlab graph FILE|LAB -o lab.svg`: draw a topology file (its plan) or a running lab (with its live state)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..kinds import load_lab, netplan_for
from ..lab import Lab
from .drawing import FORMATS, render, to_dot
from .state import gather



def cmd_graph(args: argparse.Namespace) -> int:
    fmt = args.format or (Path(args.output).suffix.lstrip(".") if args.output != "-" else "svg")
    if fmt not in FORMATS:
        print(f"error: cannot tell the format from {args.output!r}: give --format ({', '.join(FORMATS)})",
              file=sys.stderr)
        return 2
    if Path(args.target).is_file():
        net = netplan_for(load_lab(args.target))
        dot_text = to_dot(net)
    else:
        lab = Lab.attach(args.target, args.run_root)
        dot_text = to_dot(lab.net, gather(lab), title=lab.name)
    data = render(dot_text, fmt)
    if args.output == "-":
        sys.stdout.buffer.write(data)
    else:
        Path(args.output).write_bytes(data)
        print(f"wrote {args.output} ({len(data)} bytes)", file=sys.stderr)
    return 0
