"""FRR: where its daemons live, which version we accept, and how to ask a router for JSON state."""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
from pathlib import Path

from .errors import DependencyError

FRR_DIR = Path("/usr/lib/frr")
TESTED_MAJORS = (8,)  # Debian 12 ships 8.4; other majors change CLI/JSON details we rely on


def daemon_path(daemon: str) -> Path:
    return FRR_DIR / daemon


def frr_version() -> str:
    """The installed FRR version, e.g. '8.4.4'; DependencyError when FRR is missing."""
    zebra = daemon_path("zebra")
    if not zebra.exists():
        raise DependencyError(f"FRR is not installed ({zebra} missing): run `make setup` (apt-get install frr)")
    out = subprocess.run([str(zebra), "--version"], capture_output=True, text=True, timeout=10).stdout
    m = re.search(r"version\s+(\d+\.\d+(?:\.\d+)?)", out)
    if not m:
        raise DependencyError(f"cannot read FRR's version from `{zebra} --version`: {out.strip()[:200]!r}")
    return m.group(1)


def check_frr(allow_untested: bool = False) -> str:
    """Fail clearly on an FRR major version the lab was not tested with."""
    version = frr_version()
    if int(version.split(".")[0]) not in TESTED_MAJORS and not allow_untested:
        raise DependencyError(f"FRR {version} is untested (tested: {', '.join(map(str, TESTED_MAJORS))}.x); "
                              "set MHLAB_ALLOW_UNTESTED_FRR=1 to try anyway")
    return version


def fd_limit(peers: int = 0) -> int:
    """The file descriptors an FRR daemon is sized for (``--limit-fds``).  FRR allocates its event tables
    for the process's whole RLIMIT_NOFILE (20,000 here, often 1,048,576): about 3 MB of RSS per daemon for
    descriptors a router never opens.  A daemon needs a few dozen plus two per BGP peer (the connect and
    the accepted socket); the slack keeps vtysh sessions and restarts well inside the limit."""
    return 1024 + 4 * peers


# glibc's allocator for every FRR daemon: one arena instead of one per thread (zebra runs 6 threads, bgpd
# 4), and freed memory at the heap's top handed back at 64 kB instead of 128 kB, with no extra padding.
# Measured on a 20-site lab (43 routers): zebra 5.14 -> 4.90 MB and bgpd 8.52 -> 8.39 MB of private memory
# per router; MALLOC_ARENA_MAX alone: 0.1 MB (zebra only); a threshold of 0 and a 64 kB mmap threshold: no more
DAEMON_ENV = (("MALLOC_ARENA_MAX", "1"), ("MALLOC_TRIM_THRESHOLD_", "65536"), ("MALLOC_TOP_PAD_", "0"))


def daemon_env() -> dict[str, str]:
    """What a router's FRR daemons get in their environment on top of the node's (see DAEMON_ENV)."""
    return dict(DAEMON_ENV)


def daemon_argv(daemon: str, confdir: Path, rundir: Path, peers: int = 0) -> list[str]:
    """Foreground daemon with every path private to the node (no shared /var/run/frr, no TCP vty), sized
    for ``peers`` BGP sessions (see :func:`fd_limit`)."""
    argv = [str(daemon_path(daemon)), "-u", "frr", "-g", "frr", "-f", str(confdir / f"{daemon}.conf"),
            "-i", str(rundir / f"{daemon}.pid"), "--vty_socket", str(rundir), "-P", "0",
            "--limit-fds", str(fd_limit(peers))]
    if daemon == "zebra":
        argv += ["-z", str(rundir / "zserv.api")]
    elif daemon == "bfdd":
        argv += ["-z", str(rundir / "zserv.api"), "--bfdctl", str(rundir / "bfdd.sock")]
    else:
        argv += ["-z", str(rundir / "zserv.api")]
    return argv


def check_argv(daemon: str, confdir: Path, peers: int = 0) -> list[str]:
    """FRR's own dry run (-C) of a config; read its verdict with ``check_problems``."""
    return [str(daemon_path(daemon)), "-C", "-u", "frr", "-g", "frr", "--limit-fds", str(fd_limit(peers)),
            "-f", str(confdir / f"{daemon}.conf")]


# FRR 8.4's dry run exits 0 on a line it cannot parse and only logs it ("No such command on config line
# 5: ...", "Command returned Warning Config Failed on config line 4: ..."); its other output (interfaces
# down, no MPLS) is not about the config
_CONFIG_LINE = re.compile(r"[^\]\n]*on config line \d+:.*")


def check_problems(returncode: int, output: str) -> list[str]:
    """What is wrong with a config, from its dry run's exit status and output (empty: it is fine)."""
    problems = [m.group(0).strip() for m in _CONFIG_LINE.finditer(output)]
    if returncode != 0 and not problems:
        problems.append(f"exit {returncode}: {output.strip()[-400:]}")
    return problems


# a 16-bit or 32-bit AS number after these words
_ASN_AFTER = ("remote-as", "local-as")
_MAYBE_ADDRESS = re.compile(r"[0-9A-Fa-f]*[:.][0-9A-Fa-f:.]*(/\d+)?")  # worth asking ipaddress about


def config_shape(text: str, node: str, rundir: str) -> str:
    """A rendered FRR config with what differs between routers of the same role taken out: comments, the
    router's own name and run folder, descriptions, AS numbers, and IPv4/IPv6 addresses that are valid
    (a prefix keeps its length).  Two configs of one shape parse alike, so one dry run stands for all of
    them (a 250-site lab renders 1,006 configs of a handful of shapes).  What is not provably valid stays
    in the shape word for word: a malformed address or an out-of-range AS number makes a shape of its own,
    which gets its own dry run."""
    out = []
    for line in text.replace(rundir, "<dir>").splitlines():
        words = line.split()
        if not words or words[0].startswith("!"):
            continue
        if "description" in words:
            words = words[:words.index("description") + 1] + ["<text>"]
        shaped = [_shape_word(w, words[i - 1] if i else "", node, i == 2 and words[:2] == ["router", "bgp"])
                  for i, w in enumerate(words)]
        out.append(" ".join(shaped))
    return "\n".join(out)


def _shape_word(word: str, before: str, node: str, router_asn: bool) -> str:
    if word == node:
        return "<node>"
    if (router_asn or before in _ASN_AFTER) and word.isdigit() and 1 <= int(word) <= 4294967295:
        return "<asn>"
    if not _MAYBE_ADDRESS.fullmatch(word):
        return word
    addr, slash, length = word.partition("/")
    try:
        version = ipaddress.ip_address(addr).version
        if slash:
            ipaddress.ip_network(word, strict=False)
    except ValueError:
        return word
    return f"<v{version}>{slash}{length}"


def vtysh_argv(rundir: Path, command: str) -> list[str]:
    return ["vtysh", "--vty_socket", str(rundir), "-c", command]


def parse_json(text: str) -> dict:
    """vtysh prints JSON, or nothing when the daemon is not there; empty means {}."""
    text = text.strip()
    if not text:
        return {}
    try:
        return json.loads(text)
    except ValueError:
        return {}


def bgp_peers(summary: dict) -> dict[str, dict]:
    """Peers of ``show bgp summary json`` (IPv6 unicast), keyed by address."""
    return summary.get("ipv6Unicast", {}).get("peers", {})


def json_cmp(actual, expected) -> str | None:
    """Subset match (as in FRR topotests): every key/value of ``expected`` must be in ``actual``.

    Returns None on a match, else a sentence naming the first difference.  Lists match element-wise for the
    expected length; a dict value of ``expected`` may be a callable predicate.
    """
    return _cmp(actual, expected, "")


def _cmp(actual, expected, path: str) -> str | None:
    if callable(expected):
        return None if expected(actual) else f"{path or '.'}: {actual!r} does not satisfy the predicate"
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{path or '.'}: expected an object, got {type(actual).__name__}"
        for k, v in expected.items():
            if k not in actual:
                return f"{path}.{k}: missing"
            diff = _cmp(actual[k], v, f"{path}.{k}")
            if diff:
                return diff
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) < len(expected):
            return f"{path or '.'}: expected a list of at least {len(expected)}"
        for i, v in enumerate(expected):
            diff = _cmp(actual[i], v, f"{path}[{i}]")
            if diff:
                return diff
        return None
    return None if actual == expected else f"{path or '.'}: {actual!r} != {expected!r}"
