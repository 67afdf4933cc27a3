"""Applying a policy in one host: kernel source selection, getaddrinfo's order, and the port rows.

- ``ip addrlabel``: the table's labels (the kernel keeps no precedence).  The kernel's source selection
  (RFC 6724 rule 6, matching label) then picks, for a destination, the source whose label matches, for
  every program that lets the kernel choose - no change to applications.
- ``gai.conf``: ``label`` and ``precedence`` lines (the whole table: any line replaces glibc's defaults),
  written in place over the file bind-mounted on /etc/gai.conf; glibc rereads it when its mtime changes.
- port rows: the source was chosen when the socket connected, by address only, so an nftables SNAT rule per
  row rewrites the source of new connections to that port to the host's address in the row's source prefix
  (the address whose label is the row's).  Conntrack maps the replies back.  The rule also marks the
  connection's first packet ``SOURCE_CHOSEN`` (agents/marks.py), so an exit path agent on the same host
  keeps that source instead of its cache's while it works.  A connection that already has the row's
  source stops there, so a lower row cannot rewrite it.  A destination row needs no rewrite (the kernel
  follows its label), but a connection that left with that row's source is marked the same way: the
  policy chose it, and an exit path race must not replace it (only a source that gets no answer is raced).
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
from pathlib import Path

from agents.marks import SOURCE_CHOSEN

from .table import Policy

NFT_TABLE = "mhlab_policy"
PROTO_NAMES = {6: "tcp", 17: "udp"}


def unique_rows(policy: Policy) -> list[tuple[ipaddress.IPv6Network, int, int]]:
    """The rows with each prefix once (the first wins: a table is a function of the prefix)."""
    seen, out = set(), []
    for row in policy.rows:
        if row[0] not in seen:
            seen.add(row[0])
            out.append(row)
    return out


def addrlabel_batch(policy: Policy) -> str:
    lines = ["addrlabel flush"] + [f"addrlabel add prefix {p} label {lab}" for p, _, lab in unique_rows(policy)]
    return "\n".join(lines) + "\n"


def gai_conf(policy: Policy) -> str:
    lines = ["# written by the policy client from the site's DHCPv6 policy (RFC 7078); replaces glibc's table"]
    for p, prec, lab in unique_rows(policy):
        lines += [f"label {p} {lab}", f"precedence {p} {prec}"]
    return "\n".join(lines) + "\n"


def snat_sources(policy: Policy, addresses: list[ipaddress.IPv6Address]) -> list[tuple[tuple, ipaddress.IPv6Address | None]]:
    """Each port row with the host's address whose label is the row's (None: the host has none)."""
    out = []
    for row in sorted(policy.ports, key=lambda r: (-r[1], -r[0].prefixlen)):
        label = row[2]
        out.append((row, next((a for a in addresses if policy.label_of(a) == label), None)))
    return out


def steering_sources(policy: Policy, addresses: list[ipaddress.IPv6Address]) -> list[tuple[ipaddress.IPv6Network, ipaddress.IPv6Address]]:
    """Each destination row (a prefix holding none of the host's addresses, whose label is one of the host's
    addresses') with that address: the source the kernel picks for those destinations because of the
    policy.  The site-prefix rows and RFC 6724's defaults name no destination and are left out."""
    out = []
    for net, _prec, label in sorted(unique_rows(policy), key=lambda r: -r[0].prefixlen):
        if any(a in net for a in addresses):
            continue
        src = next((a for a in addresses if policy.label_of(a) == label), None)
        if src is not None:
            out.append((net, src))
    return out


def nft_ruleset(policy: Policy, addresses: list[ipaddress.IPv6Address]) -> str:
    rules = ["    ip6 saddr fe80::/10 return"]
    for (net, _prec, _lab, proto, lo, hi), src in snat_sources(policy, addresses):
        if src is None:
            continue
        parts = [f"meta l4proto {PROTO_NAMES[proto]} th dport {lo}-{hi}"] if proto in PROTO_NAMES else []
        parts += [f"ip6 daddr {net}"] if net.prefixlen else []
        # the row's packets say their source was chosen (agents/marks.py: the exit path keeps it);
        # a connection that already has the row's source is done, the others get it
        rules.append("    " + " ".join(parts + [f"meta mark set meta mark | {SOURCE_CHOSEN:#x} ip6 saddr {src} accept"]))
        rules.append("    " + " ".join(parts + [f"counter snat ip6 to {src}"]))
    for net, src in steering_sources(policy, addresses):
        # a destination row the kernel followed (RFC 6724 rule 6) chose this source too: said the same way
        rules.append(f"    ip6 daddr {net} ip6 saddr {src} meta mark set meta mark | {SOURCE_CHOSEN:#x}")
    body = "\n".join(rules)
    return (f"table ip6 {NFT_TABLE} {{}}\ndelete table ip6 {NFT_TABLE}\n"
            f"table ip6 {NFT_TABLE} {{\n  chain out {{\n    type nat hook postrouting priority srcnat; "
            f"policy accept;\n{body}\n  }}\n}}\n")


def global_addresses(ifname: str) -> list[ipaddress.IPv6Address]:
    out = subprocess.run(["ip", "-j", "-6", "addr", "show", "dev", ifname, "scope", "global"], capture_output=True,
                         text=True, check=True).stdout
    return [ipaddress.IPv6Address(a["local"]) for link in json.loads(out or "[]") for a in link.get("addr_info", []) if "local" in a]


def _run(argv: list[str], text: str) -> None:
    res = subprocess.run(argv, input=text, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {(res.stderr or res.stdout).strip()}")


def bind_gai_conf(path: Path, target: str = "/etc/gai.conf") -> None:
    """Mount our file on /etc/gai.conf inside this host's private mount namespace (goes with the host)."""
    if not path.exists():
        path.write_text("# no policy yet\n")
    if not Path(target).exists():
        raise RuntimeError(f"{target} does not exist: nothing to bind-mount over")
    _run(["mount", "--bind", str(path), target], "")


def apply(policy: Policy, ifname: str, gai_path: Path) -> dict:
    """Install ``policy``; returns what was installed (for the state file)."""
    _run(["ip", "-6", "-batch", "-"], addrlabel_batch(policy))
    with open(gai_path, "r+") as f:  # in place: a new inode would not be the one mounted
        f.truncate(0)
        f.write(gai_conf(policy))
    addresses = global_addresses(ifname)
    _run(["nft", "-f", "-"], nft_ruleset(policy, addresses))
    return {"snat": [[str(row[0]), PROTO_NAMES.get(row[3], "any"), f"{row[4]}-{row[5]}", str(src) if src else None]
                     for row, src in snat_sources(policy, addresses)]}
