"""The live verbs' command lines: fault, faults, restore, capture, graph, watch, serve.

Only argparse here, so that building the ``mhlab`` parser stays fast (no Mininet, aiohttp or rich loaded for
``mhlab --help``): each verb's handler lives in its own module and is imported when the verb runs.
cli.py adds each verb with one ``register_*`` line.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable

from .faultwords import usage_lines


def _lazy(target: str) -> Callable[[argparse.Namespace], int]:
    """The handler ``module:function``, imported when its verb runs."""
    module, _, name = target.partition(":")

    def run(args: argparse.Namespace) -> int:
        return getattr(importlib.import_module(module), name)(args)
    run.__qualname__ = target
    return run


FAULT_EPILOG = """\
kinds (positional words, then any other field of the scenario language as FIELD=VALUE):
  {kinds}

links are named as you think of them: a segment (ispa-ra), either order (ra-ispa), a node pair (ra,ispa),
or one port (h1:lan).  A fault stays in force until `mhlab restore`, or for --for SECONDS.

examples:
  sudo mhlab fault twoisp link-down ispa-ra             ISP A's access link goes down
  sudo mhlab fault twoisp loss ra-ispa 30% --for 20     30 % loss for 20 s, then undone by itself
  sudo mhlab fault twoisp rate-limit ispa-ra 1mbit direction=forward
  sudo mhlab fault twoisp flap ispa-ra 4000 1000        down 1 s every 4 s
  sudo mhlab fault twoisp upstream-cut ispa             ISP A loses transit; the site sees nothing
  sudo mhlab fault twoisp daemon-kill ra bgpd           (restore restarts it)
  sudo mhlab fault twoisp bgp-reset ra ispa             one-shot: nothing to restore
  sudo mhlab faults twoisp                              what is in force
  sudo mhlab restore twoisp --all
"""


def register_fault(sub: argparse._SubParsersAction) -> None:
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
    f.set_defaults(fn=_lazy("testbed.live.faultcmd:cmd_fault"))

    fs = sub.add_parser("faults", help="faults in force on a running lab (applied by `mhlab fault`)",
                        description="List the faults in force on a lab: name, state, age, time left, what.",
                        epilog="example:\n  sudo mhlab faults twoisp --json",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    fs.add_argument("lab", help="lab name")
    fs.add_argument("--json", action="store_true", help="machine-readable output")
    fs.set_defaults(fn=_lazy("testbed.live.faultcmd:cmd_faults"))

    r = sub.add_parser("restore", help="undo faults in force (by name, by link/ISP/node, or --all)",
                       description="Undo faults applied by `mhlab fault`, from any shell.",
                       epilog="examples:\n  sudo mhlab restore twoisp link-down-ispa-ra\n"
                              "  sudo mhlab restore twoisp ispa-ra      every fault on that link\n"
                              "  sudo mhlab restore twoisp --all",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("lab", help="lab name")
    r.add_argument("which", nargs="?", help="fault name, or what it acts on (ispa-ra, ispa, ra)")
    r.add_argument("--all", action="store_true", help="every fault in force")
    r.set_defaults(fn=_lazy("testbed.live.faultcmd:cmd_restore"))


CAPTURE_EPILOG = """\
LINK is a segment (ispa-ra), either order (ra-ispa), a node pair (ra,ispa), one port (h1:lan), or a LAN name
(site-lan: the whole LAN, captured on its bridge).

examples:
  sudo mhlab capture twoisp ispa-ra -w /tmp/ispa-ra.pcap --for 10
  sudo mhlab capture twoisp ra-ispa | wireshark -k -i -         live in Wireshark
  sudo mhlab capture twoisp h1:lan | tshark -l -r - -Y icmpv6   decode on the fly
  sudo mhlab capture twoisp ispa-ra --filter 'icmp6 and host 2001:db8:f000::10'   a tcpdump filter
"""


def register_capture(sub: argparse._SubParsersAction) -> None:
    """Add the capture verb to the mhlab command."""
    c = sub.add_parser("capture", help="pcap of one link of a running lab, to a file or live to stdout",
                       description="Capture one link of a running lab with tcpdump inside the node.",
                       epilog=CAPTURE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("lab", help="lab name")
    c.add_argument("link", help="ispa-ra, ra-ispa, ra,ispa, NODE:IFACE or a LAN name")
    c.add_argument("-w", "--write", metavar="FILE", help="pcap file ('-' or absent: stdout)")
    c.add_argument("--for", dest="for_", type=float, metavar="SECONDS", help="stop after SECONDS")
    c.add_argument("--filter", metavar="EXPR", help="a tcpdump (pcap-filter) expression, e.g. 'icmp6 or tcp port 80'")
    c.set_defaults(fn=_lazy("testbed.live.capture:cmd_capture"))


GRAPH_EPILOG = """\
A file draws the plan (ISPs, sites, routers, hosts, links with prefixes and addresses, no root needed);
a lab name draws the running lab: links up/down, BGP session states, deprecated addresses, shim contexts'
current locator pairs and the faults in force.

examples:
  mhlab graph topologies/two-isp-site.yaml -o twoisp.svg
  sudo mhlab graph twoisp -o /tmp/twoisp.png
  mhlab graph topologies/two-sites-shim.yaml -o - --format dot | less
"""


def register_graph(sub: argparse._SubParsersAction) -> None:
    """Add the graph verb to the mhlab command."""
    g = sub.add_parser("graph", help="draw a topology file or a running lab (Graphviz: svg, png, pdf, dot)",
                       description="Draw a lab with Graphviz.", epilog=GRAPH_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    g.add_argument("target", help="topology YAML file, or the name of a running lab")
    g.add_argument("-o", "--output", required=True, help="output file (format from its suffix), or - for stdout")
    g.add_argument("--format", help="svg, png, pdf or dot (default: from the suffix; svg for -)")
    g.set_defaults(fn=_lazy("testbed.live.graphcmd:cmd_graph"))


WATCH_EPILOG = """\
examples:
  sudo mhlab watch twoshim                 refresh every second until Ctrl-C
  sudo mhlab watch twoisp --once           one snapshot, then exit (scripts, logs)
  # in a second shell:  sudo mhlab fault twoshim link-down ispa1-ra1
"""


def register_watch(sub: argparse._SubParsersAction) -> None:
    """Add the watch verb to the mhlab command."""
    w = sub.add_parser("watch", help="live terminal view of a running lab: links, BGP, faults, addresses, shim",
                       description="Refresh a view of a running lab until Ctrl-C.", epilog=WATCH_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    w.add_argument("lab", help="lab name")
    w.add_argument("--interval", type=float, default=1.0, help="seconds between snapshots (default 1)")
    w.add_argument("--once", action="store_true", help="print one snapshot and exit")
    w.add_argument("--screen", action="store_true", help="use the whole terminal (alternate screen)")
    w.set_defaults(fn=_lazy("testbed.live.watch:cmd_watch"))


SERVE_EPILOG = """\
The token in the printed URL is the only key: the server injects faults as root, and refuses (403) any
request without it.  Keep the default 127.0.0.1; reach it from elsewhere with `ssh -L PORT:127.0.0.1:PORT`.

examples:
  sudo mhlab serve twoshim                     prints http://127.0.0.1:PORT/?token=...
  sudo mhlab serve twoisp --port 8765 --no-flow
  sudo mhlab serve twoshim --follow reports/shim-link-down/logs    a scenario's flows, while it runs
"""


def register_serve(sub: argparse._SubParsersAction) -> None:
    """Add the serve verb to the mhlab command."""
    s = sub.add_parser("serve", help="the lab live in a browser: drawing, flows, cut/restore buttons (local web "
                       "server with a token)", description="Serve a live page of a running lab.", epilog=SERVE_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("lab", help="lab name")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    s.add_argument("--token", help="use this token instead of a random one (tests)")
    s.add_argument("--no-flow", action="store_true", help="do not start a tcpseq flow at start-up")
    s.add_argument("--follow", action="append", default=[], metavar="DIR",
                   help="also show the flows whose agent logs appear in DIR (a scenario's <report>/logs)")
    s.add_argument("--interval", type=float, default=1.0, help="seconds between state snapshots (default 1)")
    s.set_defaults(fn=_lazy("testbed.live.web:cmd_serve"))
