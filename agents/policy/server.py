"""The site's DHCPv6 policy server: dnsmasq, stateless, serving the policy in RFC 7078 options.

    python -m agents.policy.server --dir NODE_DIR --iface IF [--iface IF2] --policy JSON
        writes NODE_DIR/dhcp6-policy.opts and becomes dnsmasq (same process: the lab records and stops it)
    python -m agents.policy.server push --dir NODE_DIR --policy JSON
        rewrites the options file and sends dnsmasq SIGHUP: it answers with the new policy from then on

dnsmasq runs in the foreground with DNS off (``--port=0``), ``static`` DHCPv6 ranges constructed from each
interface's prefix (it answers Information-Requests, hands out no address and sends no RA), its log in
NODE_DIR/dnsmasq.log and its pid in NODE_DIR/dhcp6-policy.pid (the readiness file).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from .table import Policy, dnsmasq_options

OPTS, PID, LOG = "dhcp6-policy.opts", "dhcp6-policy.pid", "dnsmasq.log"


def dnsmasq_argv(node_dir: Path, ifaces: list[str]) -> list[str]:
    argv = ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--port=0", "--user=root",
            "--bind-interfaces", f"--dhcp-optsfile={node_dir / OPTS}", f"--pid-file={node_dir / PID}",
            f"--log-facility={node_dir / LOG}", "--log-dhcp"]
    for ifname in ifaces:
        argv += [f"--interface={ifname}", f"--dhcp-range=::,constructor:{ifname},static"]
    return argv


def write_options(node_dir: Path, policy: Policy) -> None:
    tmp = node_dir / (OPTS + ".new")
    tmp.write_text(dnsmasq_options(policy))
    tmp.replace(node_dir / OPTS)


def push(node_dir: Path, policy: Policy) -> int:
    """A new policy for a running server; returns dnsmasq's pid."""
    write_options(node_dir, policy)
    pid = int((node_dir / PID).read_text().split()[0])
    os.kill(pid, signal.SIGHUP)
    return pid


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    pushing = bool(args) and args[0] == "push"
    parser = argparse.ArgumentParser(prog="python -m agents.policy.server", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, required=True, help="the node's folder (options file, pid, log)")
    parser.add_argument("--policy", required=True, help="the policy as JSON (rows, ports, refresh)")
    parser.add_argument("--iface", action="append", default=[], help="interface to serve (repeat)")
    opts = parser.parse_args(args[1:] if pushing else args)
    policy = Policy.from_json(json.loads(opts.policy))
    if pushing:
        print(f"dnsmasq {push(opts.dir, policy)} reloads {opts.dir / OPTS}")
        return 0
    if not opts.iface:
        parser.error("--iface is required to serve")
    write_options(opts.dir, policy)
    argv = dnsmasq_argv(opts.dir, opts.iface)
    sys.stdout.flush()
    os.execvp(argv[0], argv)
    return 1  # not reached


if __name__ == "__main__":
    raise SystemExit(main())
