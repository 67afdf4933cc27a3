"""`mhlab capture LAB LINK [-w FILE] [--for S]`: a pcap of one link of a running lab, to a file or live to
stdout (``mhlab capture twoisp ra-ispa | wireshark -k -i -``).

tcpdump runs inside the node (recorded in the journal while it runs) and always writes its pcap to our
stdout or to a file *we* opened, so the file lands where the caller thinks, whatever the node's mounts.
Progress goes to stderr; Ctrl-C (or the end of --for) stops tcpdump cleanly and flushes the file.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import time

from ..lab import Lab
from .links import LinkWordError, capture_port



def tcpdump_argv(ifname: str, bpf_filter: list[str]) -> list[str]:
    """Packet-buffered pcap on stdout (-U -w -), no name lookups, full packets."""
    return ["tcpdump", "-n", "-U", "-s", "0", "-i", ifname, "-w", "-", *bpf_filter]


def cmd_capture(args: argparse.Namespace) -> int:
    lab = Lab.attach(args.lab, args.run_root)
    try:
        port = capture_port(lab.net, args.link)
    except LinkWordError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    bpf = shlex.split(args.filter) if args.filter else []
    to_stdout = args.write in (None, "-")
    if to_stdout and sys.stdout.isatty():
        print("error: refusing to write pcap to a terminal; give -w FILE or pipe it (| wireshark -k -i -)",
              file=sys.stderr)
        return 2
    out = sys.stdout.buffer if to_stdout else open(args.write, "wb", buffering=0)
    where = "stdout" if to_stdout else args.write
    print(f"capturing {port.node}:{port.ifname} ({args.link}) to {where}"
          + (f" for {args.for_:g} s" if args.for_ else "; Ctrl-C stops"), file=sys.stderr, flush=True)
    proc = lab[port.node].popen(tcpdump_argv(port.ifname, bpf), name=f"tcpdump-{args.link}",
                                stdout=out.fileno(), stderr=sys.stderr.fileno())
    stop: list[int] = []
    previous = {sig: signal.signal(sig, lambda n, _f: stop.append(n)) for sig in (signal.SIGINT, signal.SIGTERM)}
    deadline = time.monotonic() + args.for_ if args.for_ else None
    try:
        while proc.poll() is None and not stop and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # tcpdump flushes and prints its counts on SIGINT
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if not to_stdout:
            out.close()
    if not to_stdout:
        print(f"wrote {where} ({os.path.getsize(where)} bytes)", file=sys.stderr)
    return 0 if proc.returncode in (0, -signal.SIGINT) else 1
