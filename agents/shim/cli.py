"""``shimctl``: ask a running shim daemon for its state, or work with HBA sets offline."""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from agents.jsonctl import request

from . import cga, hba
from .config import load_private_key, prefix_bytes

DEFAULT_SOCKET = os.environ.get("SHIM_SOCKET") or (os.path.join(os.environ["MHLAB_NODE_DIR"], "shim.sock") if "MHLAB_NODE_DIR" in os.environ else "/tmp/shim6.sock")  # in a lab node: that node's daemon

EXAMPLES = """\
examples:
  shimctl status                          # ULIDs, locators, timer profile, counters
  shimctl --socket /run/hA-shim.sock pairs  # fig. 21 state of every locator pair
  shimctl contexts --json                 # machine-readable, for scripts and tests
  shimctl events --since 12.5             # what happened after t=12.5 s (daemon clock)
  shimctl connect 2001:db8:b1:1::1234     # declare a flow to a peer ULID
  shimctl hba generate --prefix 2001:db8:a1:1::/64 --prefix 2001:db8:a2:1::/64 --sec 1
  shimctl hba verify 2001:db8:a2:1:... --params <hex from 'hba generate'>

inside a lab:  mhlab exec LAB hA -- shimctl pairs
"""

HBA_EXAMPLES = """\
examples:
  # a fresh random HBA set over two ISP prefixes, Sec=1 (16 zero bits of Hash2)
  shimctl hba generate --prefix 2001:db8:a1:1::/64 --prefix 2001:db8:a2:1::/64 --sec 1
  # reproducible: start the modifier search at 0 and fix the 384-bit pseudo-key
  shimctl hba generate --prefix 2001:db8:a1:1::/64 --prefix 2001:db8:a2:1::/64 --sec 0 \\
      --modifier 00000000000000000000000000000000 --pseudo-key $(printf '%096d' 0) --json
  # hybrid HBA/CGA: the key field holds a real RSA public key (P bit set)
  openssl genrsa -out key.pem 1024 && shimctl hba generate --prefix 2001:db8:a1:1::/64 --key key.pem
  # is this address a member of the set described by these parameters?
  shimctl hba verify 2001:db8:a2:1:1c3f:... --params 0000...0012...
"""


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    if not rows:
        return "(none)"
    cells = [[str(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def show(cmd: str, result: Any, as_json: bool) -> str:
    if as_json or cmd == "status":
        return json.dumps(result, indent=2)
    if cmd == "pairs":
        for row in result:
            row["state"] = ("*" if row["preferred"] else " ") + row["state"]
        return table(result, ["peer", "local", "remote", "state", "reap", "since", "pinned"]) + "\n(* = preferred)"
    if cmd == "contexts":
        for row in result:
            dp = row.get("datapath") or {}
            row["locators"] = " -> ".join(dp.get("locators", [])) + (" (translated)" if dp.get("translated") else "")
            row["packets out/in"] = "/".join(str(sum(c["packets"] for k, c in dp.get("counters", {}).items() if k.endswith(d)))
                                             for d in ("out", "in"))
        return table(result, ["peer_ulid", "local_ulid", "state", "role", "local_context_tag", "peer_context_tag", "reap",
                              "locators", "packets out/in"])
    if cmd == "events":
        return "\n".join(f"{e.pop('time'):>10.3f}  {e.pop('kind'):<22} {json.dumps(e)}" for e in result) or "(none)"
    return json.dumps(result, indent=2)


def hba_generate(args: argparse.Namespace) -> str:
    key = load_private_key(args.key) if args.key else None
    hset = hba.generate_hba_set(
        [prefix_bytes(p) for p in args.prefix],
        args.sec,
        public_key=cga.public_key_der(key.public_key()) if isinstance(key, rsa.RSAPrivateKey) else None,
        modifier=bytes.fromhex(args.modifier) if args.modifier else None,
        pseudo_key=bytes.fromhex(args.pseudo_key) if args.pseudo_key else None,
    )
    entries = [
        {"address": str(a), "prefix": str(ipaddress.IPv6Network((p.prefix + bytes(8), 64))),
         "collision_count": p.collision_count, "params": p.encode().hex()}
        for a, p in zip(hset.addresses, hset.params)
    ]
    out = {"sec": hset.sec, "hybrid": hset.hybrid, "modifier": hset.modifier.hex(), "addresses": entries}
    if args.json:
        return json.dumps(out, indent=2)
    lines = [f"HBA set ({'hybrid HBA/CGA' if hset.hybrid else 'HBA, pseudo-key'}), Sec={hset.sec}, "
             f"modifier {hset.modifier.hex()}"]
    for e in entries:
        lines += [f"  {e['address']:<40} prefix {e['prefix']}  cc={e['collision_count']}", f"    params {e['params']}"]
    return "\n".join(lines)


def hba_verify(args: argparse.Namespace) -> tuple[str, int]:
    try:
        params = cga.CgaParams.decode(bytes.fromhex(args.params))
        hba.verify_hba(ipaddress.IPv6Address(args.address), params)
    except (cga.CgaError, ValueError) as exc:
        return f"NOT a member: {args.address} ({exc})", 1
    return f"member: {args.address} belongs to the HBA set {[str(ipaddress.IPv6Network((p + bytes(8), 64))) for p in hba.multi_prefix_of(params).prefixes]}", 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="shimctl", description="Inspect a shim (Shim6/HBA) daemon, or make and check HBA sets.",
                                epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--socket", default=DEFAULT_SOCKET, help=f"daemon control socket (default {DEFAULT_SOCKET}, or $SHIM_SOCKET)")
    sub = p.add_subparsers(dest="cmd", required=True)
    for name, text in [("status", "the daemon's identity, profile, policy and counters"),
                       ("contexts", "one line per shim context: peer, state, context tags"),
                       ("pairs", "every locator pair with its state (reachable/unreachable/indeterminate/test)")]:
        s = sub.add_parser(name, help=text, description=text)
        s.add_argument("--json", action="store_true", help="print JSON")
    ev = sub.add_parser("events", help="recent events (contexts, failures, pair changes)")
    ev.add_argument("--since", type=float, help="only events after this daemon time (seconds)")
    ev.add_argument("--json", action="store_true")
    co = sub.add_parser("connect", help="declare a flow to PEER; the daemon's policy decides when to establish")
    co.add_argument("peer")
    co.add_argument("--local", help="which of our ULIDs (default: the first)")
    co.add_argument("--now", action="store_true", help="establish now, whatever the policy")
    co.add_argument("--json", action="store_true")
    h = sub.add_parser("hba", help="offline: generate or verify HBA sets (RFC 5535)", epilog=HBA_EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    hs = h.add_subparsers(dest="hba_cmd", required=True)
    g = hs.add_parser("generate", help="one address per prefix, all bound together", epilog=HBA_EXAMPLES,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    g.add_argument("--prefix", action="append", required=True, help="a /64 prefix; repeat for every ISP")
    g.add_argument("--sec", type=int, default=0, help="Sec: the search needs ~2^(16*Sec) hashes (0 or 1 in practice)")
    g.add_argument("--modifier", help="32 hex digits: start the modifier search here (reproducible sets)")
    keys = g.add_mutually_exclusive_group()
    keys.add_argument("--pseudo-key", help="96 hex digits: the 384-bit random pseudo-key (HBA without public key)")
    keys.add_argument("--key", help="RSA private key in PEM: hybrid HBA/CGA addresses")
    g.add_argument("--json", action="store_true", help="print JSON (addresses and parameter structures)")
    v = hs.add_parser("verify", help="does ADDRESS belong to the set in --params?", epilog=HBA_EXAMPLES,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    v.add_argument("address")
    v.add_argument("--params", required=True, help="CGA Parameter Data Structure in hex (with Multi-Prefix extension)")
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        if args.cmd == "hba":
            if args.hba_cmd == "generate":
                print(hba_generate(args))
                sys.exit(0)
            text, code = hba_verify(args)
            print(text)
            sys.exit(code)
        payload: dict[str, Any] = {"cmd": args.cmd}
        if args.cmd == "events" and args.since is not None:
            payload["since"] = args.since
        if args.cmd == "connect":
            payload.update({"peer": args.peer, "now": args.now, **({"local": args.local} if args.local else {})})
        print(show(args.cmd, request(args.socket, payload), args.json))
    except (OSError, RuntimeError, ValueError, cga.CgaError) as exc:
        print(f"shimctl: {exc}", file=sys.stderr)
        sys.exit(1)
    sys.exit(0)


if __name__ == "__main__":
    main()
