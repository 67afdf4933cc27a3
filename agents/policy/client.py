"""The policy client of a site host: asks the site's DHCPv6 server for the address-selection policy and
applies it, again every INFORMATION_REFRESH_TIME.

    python -m agents.policy.client --iface eth0 --dir NODE_DIR

Stateless DHCPv6 (RFC 8415 section 18.2.6): an Information-Request to ff02::1:2 with an Option Request for
OPTION_ADDRSEL (84), OPTION_VENDOR_OPTS (17) and OPTION_INFORMATION_REFRESH_TIME (32) - servers send 84/85
only to clients that ask.  Retransmission starts at 1 s and doubles up to 8 s (RFC 8415's INF_MAX_RT is
3600 s: shortened for the lab).  The refresh time the server sends is used as is, also below RFC 8415's
600 s floor, so the lab can measure how fast a change spreads.

NODE_DIR/policy.json (written atomically after every exchange; its first appearance is the readiness
signal) holds the policy applied, its digest, when it was applied and when last confirmed.  A failure to
apply is logged and retried at the next refresh; the previous policy stays.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import select
import signal
import socket
import sys
import time
from pathlib import Path

from . import wire
from .apply import apply, bind_gai_conf
from .table import Policy

DEFAULT_REFRESH = 86400  # RFC 8415 IRT_DEFAULT, when the server sends no refresh time
FIRST_TIMEOUT, MAX_TIMEOUT = 1.0, 8.0


def duid_ll(ifname: str) -> bytes:
    """DUID-LL (type 3, hardware type 1 Ethernet) from the interface's MAC address."""
    mac = Path(f"/sys/class/net/{ifname}/address").read_text().strip()
    return bytes.fromhex("00030001") + bytes.fromhex(mac.replace(":", ""))


def open_socket(ifname: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
    sock.bind(("::", wire.CLIENT_PORT))
    return sock


def information_request(xid: int, duid: bytes, elapsed_cs: int) -> bytes:
    return wire.Message(msg_type=wire.INFORMATION_REQUEST, xid=xid, options=(
        wire.ClientId(duid=duid),
        wire.Oro(codes=(wire.OPTION_ADDRSEL, wire.OPTION_VENDOR_OPTS, wire.OPTION_INFORMATION_REFRESH_TIME)),
        wire.ElapsedTime(centiseconds=min(elapsed_cs, 0xFFFF)))).to_bytes()


def exchange(sock: socket.socket, ifindex: int, duid: bytes, log) -> tuple[wire.Message, str]:
    """Information-Request until a Reply with our transaction id comes back (retransmitting)."""
    xid, start, timeout = random.getrandbits(24), time.monotonic(), FIRST_TIMEOUT
    while True:
        elapsed = int((time.monotonic() - start) * 100)
        try:
            sock.sendto(information_request(xid, duid, elapsed), (wire.ALL_SERVERS, wire.SERVER_PORT, 0, ifindex))
        except OSError as exc:
            # the interface has no usable link-local source yet (still tentative, or not up): a message
            # lost like any other, sent again after the timeout
            log(f"could not send the Information-Request on ifindex {ifindex} yet: {exc}")
        deadline = time.monotonic() + timeout * random.uniform(0.9, 1.1)
        while (left := deadline - time.monotonic()) > 0:
            if not select.select([sock], [], [], left)[0]:
                break
            data, addr = sock.recvfrom(65535)
            try:
                msg = wire.Message.from_bytes(data)
            except wire.DhcpDecodeError as exc:
                log(f"ignored a malformed message from {addr[0]}: {exc}")
                continue
            if msg.msg_type == wire.REPLY and msg.xid == xid:
                return msg, addr[0]
        timeout = min(timeout * 2, MAX_TIMEOUT)


def write_state(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1) + "\n")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agents.policy.client", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iface", required=True, help="the host's LAN interface")
    parser.add_argument("--dir", type=Path, required=True, help="folder for policy.json and gai.conf")
    parser.add_argument("--once", action="store_true", help="one exchange, then exit")
    opts = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    def log(text: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {text}", flush=True)

    gai = opts.dir / "gai.conf"
    bind_gai_conf(gai)
    sock, ifindex, duid = open_socket(opts.iface), socket.if_nametoindex(opts.iface), duid_ll(opts.iface)
    state_path, current, state = opts.dir / "policy.json", None, {}
    while True:
        reply, server = exchange(sock, ifindex, duid, log)
        policy = Policy.from_reply(reply)
        now = time.time()
        if policy is None:
            log(f"reply from {server} carries no address-selection policy (option {wire.OPTION_ADDRSEL})")
        elif policy.as_json() != (current.as_json() if current else None):
            digest = hashlib.sha256(json.dumps(policy.as_json(), sort_keys=True).encode()).hexdigest()[:16]
            try:
                installed = apply(policy, opts.iface, gai)
            except (RuntimeError, OSError) as exc:
                log(f"could not apply policy {digest}: {exc}")
            else:
                current = policy
                state = {"digest": digest, "applied_at": now, "server": server, **policy.as_json(), **installed}
                log(f"applied policy {digest} from {server}: {len(policy.rows)} rows, {len(policy.ports)} port rows")
        if state:
            write_state(state_path, {**state, "checked_at": now})
        if opts.once:
            return 0
        refresh = policy.refresh if policy and policy.refresh else DEFAULT_REFRESH
        time.sleep(refresh)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
