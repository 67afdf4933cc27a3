"""What a lab may leave behind, looked for precisely: after ``destroy`` nothing of the lab may remain, and
nothing that only looks like it may be gone.

A lab's namespaces are anonymous (held by its anchor processes), so they are found by inode: :func:`holdings`
reads, while the lab (or what is left of a killed deploy) still exists, the network and mount namespaces of
every process the journal recorded or the lab's tag marks; :func:`leftovers` then lists, per kind, what is
still there - a process still tagged, a namespace still held by any process, an interface or nftables table
the lab would have created in the root namespace, a mount naming the run directory, the run directory.
Used by the soak benchmark and its lab test.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .procs import TAG, tagged_pids
from .rundir import RunDir


@dataclass
class Holdings:
    """The kernel objects one lab held: namespace inodes (``net:[4026…]``) and its run directory."""

    namespaces: set[str] = field(default_factory=set)
    rundir: Path | None = None


def holdings(name: str, root: str | Path | None = None) -> Holdings:
    rundir = RunDir.of(name, root)
    pids = set(tagged_pids(name, rundir.path))
    if rundir.path.exists():
        try:
            pids |= {r.pid for r in rundir.procs()}
        except (OSError, ValueError):
            pass  # a journal cut short by a kill: the tagged processes are still found
    found = Holdings(rundir=rundir.path)
    for pid in pids:
        for ns in ("net", "mnt"):
            try:
                found.namespaces.add(os.readlink(f"/proc/{pid}/ns/{ns}"))
            except OSError:
                pass
    found.namespaces -= {os.readlink("/proc/self/ns/net"), os.readlink("/proc/self/ns/mnt")}
    return found


def _lab_of(pid: str) -> str | None:
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    return next((e.split(b"=", 1)[1].decode() for e in env if e.startswith(TAG.encode() + b"=")), None)


def live_namespaces(besides: str | None = None) -> dict[str, list[str]]:
    """Every network and mount namespace some process is in -> those processes ("PID command").  With
    ``besides``, processes of *other* labs do not count: a freed namespace's inode number is soon reused by
    the next one created, maybe by another lab on the machine."""
    out: dict[str, list[str]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            if besides is not None and _lab_of(entry.name) not in (None, besides):
                continue
            for ns in ("net", "mnt"):
                try:
                    inode = os.readlink(f"{entry.path}/ns/{ns}")
                    comm = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode()[:80]
                except OSError:
                    continue
                out.setdefault(inode, []).append(f"{entry.name} {comm}")
    return out


def root_links() -> set[str]:
    out = subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True).stdout
    return {link["ifname"] for link in json.loads(out or "[]")}


def root_nft_tables() -> set[str]:
    out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    return {line.strip() for line in out.splitlines() if line.strip()}


def leftovers(name: str, held: Holdings, lab_ifnames: set[str], before_links: set[str],
              before_tables: set[str], spare_pids: set[int] = frozenset()) -> dict[str, list[str]]:
    """What of lab ``name`` is still there (empty lists: nothing).  ``before_*`` are the root namespace's
    interfaces and nftables tables before the lab; ``spare_pids`` are processes that only look like the
    lab's (not leaks)."""
    rundir = str(held.rundir) if held.rundir else f"/run/mhlab/{name}"
    procs = [f"{pid}" for pid in tagged_pids(name, held.rundir) if pid not in spare_pids and pid != os.getpid()]
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
              if rundir + "/" in line or line.split()[4] == rundir]
    links = root_links()
    return {
        "processes": procs,
        "namespaces": [f"{ns} held by {', '.join(holders)}" for ns, holders in sorted(live_namespaces(name).items())
                       if ns in held.namespaces],
        "interfaces": sorted((links - before_links) & lab_ifnames),
        "nft tables": sorted(root_nft_tables() - before_tables),
        "mounts": mounts,
        "run directories": [rundir] if Path(rundir).exists() else [],
    }
