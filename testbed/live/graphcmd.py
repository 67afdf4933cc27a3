"""`mhlab graph FILE|LAB -o lab.svg`: draw a topology file (its plan) or a running lab (with its live state)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..kinds import load_lab, netplan_for
from ..lab import Lab
from .drawing import FORMATS, render, to_dot
from .state import gather

EPILOG = """\
A file draws the plan (ISPs, sites, routers, hosts, links with prefixes and addresses, no root needed);
a lab name draws the running lab: links up/down, BGP session states, deprecated addresses, shim contexts'
current locator pairs and the faults in force.

examples:
  mhlab graph topologies/two-isp-site.yaml -o twoisp.svg
  sudo mhlab graph twoisp -o /tmp/twoisp.png
  mhlab graph topologies/two-sites-shim.yaml -o - --format dot | less
"""


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


def register(sub: argparse._SubParsersAction) -> None:
    """Add the graph verb to the mhlab command."""
    g = sub.add_parser("graph", help="draw a topology file or a running lab (Graphviz: svg, png, pdf, dot)",
                       description="Draw a lab with Graphviz.", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    g.add_argument("target", help="topology YAML file, or the name of a running lab")
    g.add_argument("-o", "--output", required=True, help="output file (format from its suffix), or - for stdout")
    g.add_argument("--format", choices=FORMATS, help="output format (default: from the suffix; svg for -)")
    g.set_defaults(fn=cmd_graph)
