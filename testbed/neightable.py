"""The host's neighbour tables: what a lab needs of them, a preflight, and an opt-in raise that is undone.

Linux keeps ONE IPv6 neighbour table (ndisc) and ONE IPv4 table (arp) for every network namespace of the
host: ``net.ipv6.neigh.default.gc_thresh1/2/3`` exist only in the root namespace (checked on 6.18: a new
namespace has no ``neigh/default`` directory, only per-interface knobs, none of them a size).  Past
``gc_thresh3`` (1,024 by default) the kernel drops entries nobody refers to that were not updated for 5 s;
when there are none - a lab coming up resolves all its neighbours at once - it refuses new ones
(``ndisc_cache: neighbor table overflow!``) and packets to unresolved neighbours are lost: a 250-site lab
(~8,000 possible IPv6 entries) never came fully up.

The limit is host state outside every lab, so it is never changed silently: :func:`preflight` fails before
anything is built, naming the sysctl and the number needed; :class:`HostTables` raises the limits only when
asked (``mhlab deploy --raise-neigh-table``), writes the old values to the lab's journal and to one host-wide
record (:data:`HOST_RECORD`, shared by every run root, since the table is), and restores them when the last
lab holding a raise is destroyed.
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from . import hostrecord
from .errors import LabError
from .hostrecord import RecordLock

HOST_RECORD = hostrecord.HOST_DIR / "neigh-table.json"  # one per host, whatever the run root
PROC_SYS = Path("/proc/sys")
FAMILIES = (6, 4)
STAT = {6: "ndisc_cache", 4: "arp_cache"}  # /proc/net/stat/<table>: entries now, all namespaces together
HEADROOM = 1.25  # a raise leaves a quarter spare for the host's own traffic and a lab started meanwhile
# What a lab makes of the entries it may make, coming up and under `mhlab check`: hosts resolve only their
# gateway and a router mostly one address of each peer (a 5-site lab: 81 of 172; a 50-site lab, 1,612 at most,
# came up under the default 1,024).  The preflight refuses a lab only when even this share cannot fit.
MADE_SHARE = 0.5


def sysctl_names(family: int) -> tuple[str, str, str]:
    """gc_thresh1 (no GC below), gc_thresh2 (GC after 5 s above), gc_thresh3 (hard limit) of a family."""
    return tuple(f"net.ipv{family}.neigh.default.gc_thresh{i}" for i in (1, 2, 3))  # type: ignore[return-value]


def entries_needed(net) -> dict[int, int]:
    """Family -> neighbour entries a lab may create: on every segment (a link or a LAN), each member's
    interface may resolve every other member's addresses there, and in IPv6 its link-local address too.
    Multicast entries (ff02::16, solicited-node groups) are left out: the kernel drops them first, whatever
    their age.  An upper bound: a 5-site lab made 81 unicast IPv6 entries of its 172 (hosts resolve only
    their gateway); it is what the lab can make, e.g. under ``mhlab check``."""
    segments: dict[str, list[list[str]]] = defaultdict(list)
    for node in net.nodes.values():
        if node.role == "bridge":  # a bridge's namespace has IPv6 off: it resolves nothing
            continue
        for iface in node.ifaces:
            segments[iface.segment].append(iface.addresses)
    need = {family: 0 for family in FAMILIES}
    for members in segments.values():
        counts = [_per_family(addresses) for addresses in members]
        for i in range(len(members)):
            for j, peer in enumerate(counts):
                if i != j:
                    need[6] += 1 + peer[6]  # the peer's link-local, then its addresses
                    need[4] += peer[4]
    return need


def _per_family(addresses: list[str]) -> dict[int, int]:
    out = {family: 0 for family in FAMILIES}
    for a in addresses:
        out[ipaddress.ip_interface(a).version] += 1
    return out


@dataclass(frozen=True)
class Table:
    """One family's table on this host: its three limits and the entries in it now."""

    family: int
    thresh: tuple[int, int, int]
    in_use: int

    def fits(self, need: int) -> bool:
        """Room for ``need`` more entries beside those in the table now (what a raise aims for)."""
        return self.in_use + need <= self.thresh[2]

    def holds(self, need: int) -> bool:
        """The limit holds what the lab will make (``MADE_SHARE`` of ``need``) by itself.  What the preflight
        asks: the entries in the table now (``/proc/net/stat``) include multicast and stale ones the kernel
        drops on demand, so on a host shared with other labs they would refuse small labs for entries that
        are not in their way; and the whole bound would refuse labs that come up."""
        return need * MADE_SHARE <= self.thresh[2]

    def tight(self, need: int) -> bool:
        """The lab fits only if it makes no more than its usual share: worth a word before it is built."""
        return need > self.thresh[2]

    def raised(self, need: int) -> tuple[int, int, int]:
        """The limits that hold ``need`` more entries with headroom: all three scaled by one whole factor,
        so the host's own proportions (128/512/1,024 by default) stay."""
        factor = math.ceil((self.in_use + need) * HEADROOM / max(self.thresh[2], 1))
        return tuple(t * max(factor, 1) for t in self.thresh)  # type: ignore[return-value]


def too_small(tables: dict[int, Table], need: dict[int, int], lab: str) -> str | None:
    """Why the host's tables cannot hold the lab (a sentence naming the sysctls and numbers), or None."""
    short = [f for f in FAMILIES if need.get(f) and not tables[f].holds(need[f])]
    if not short:
        return None
    words = []
    fix = []
    for f in short:
        t = tables[f]
        name = sysctl_names(f)[2]
        words.append(f"up to {need[f]:,} IPv{f} neighbour entries (about {round(need[f] * MADE_SHARE):,} made "
                     f"coming up), but {name} = {t.thresh[2]:,} and {t.in_use:,} are in use")
        fix += [f"{n}={v}" for n, v in zip(sysctl_names(f), t.raised(need[f]))]
    return (f"lab {lab} needs {'; and '.join(words)} (the host has one neighbour table for all network "
            "namespaces; past that limit neighbours stay unresolved and the lab never comes fully up). "
            "Deploy with --raise-neigh-table (mhlab raises the limits, journals the old values and restores "
            "them when the last lab that raised them is destroyed), or raise them yourself: "
            f"sysctl -w {' '.join(fix)}")


def tight(tables: dict[int, Table], need: dict[int, int], lab: str) -> str | None:
    """A warning when the lab fits the limits only by making fewer entries than it may, or None."""
    close = [f for f in FAMILIES if need.get(f) and tables[f].tight(need[f]) and tables[f].holds(need[f])]
    if not close:
        return None
    return (f"lab {lab} may make up to " + ", ".join(f"{need[f]:,} IPv{f} neighbour entries ({sysctl_names(f)[2]} = "
                                                    f"{tables[f].thresh[2]:,})" for f in close)
            + "; labs make about half that. If it does not come up, deploy with --raise-neigh-table")


def overflowed(proc_stat: Path = Path("/proc/net/stat")) -> dict[int, int]:
    """Family -> times the kernel refused a neighbour entry since boot (``table_fulls``, summed over CPUs)."""
    out = {}
    for family in FAMILIES:
        try:
            lines = (proc_stat / STAT[family]).read_text().splitlines()
            col = lines[0].split().index("table_fulls")
            out[family] = sum(int(line.split()[col], 16) for line in lines[1:])
        except (OSError, IndexError, ValueError):
            out[family] = 0
    return out


def overflow_note(before: dict[int, int], after: dict[int, int]) -> str | None:
    """What to add to a failed deploy's error when the host's table overflowed while it ran, or None."""
    grew = [f for f in FAMILIES if after.get(f, 0) > before.get(f, 0)]
    if not grew:
        return None
    return ("meanwhile the host's neighbour table refused entries (" + ", ".join(
        f"IPv{f}: {after[f] - before[f]:,} times, {sysctl_names(f)[2]}" for f in grew)
        + "): neighbours stayed unresolved; deploy with --raise-neigh-table")


@dataclass(frozen=True)
class HostTables:
    """The host's neighbour-table limits, read and (on request) raised through ``proc_sys``, with the
    host-wide ``record`` of who raised them from what.  Paths are parameters so tests use a folder."""

    proc_sys: Path = PROC_SYS
    proc_stat: Path = Path("/proc/net/stat")
    record: Path = HOST_RECORD

    def _path(self, name: str) -> Path:
        return self.proc_sys / name.replace(".", "/")

    def read(self, name: str) -> int:
        return int(self._path(name).read_text().split()[0])

    def write(self, name: str, value: int) -> None:
        self._path(name).write_text(f"{value}\n")

    def in_use(self, family: int) -> int:
        """Entries in the family's table now (``/proc/net/stat``: a header, then one line per CPU, each
        starting with the same count in hex)."""
        try:
            return int((self.proc_stat / STAT[family]).read_text().splitlines()[1].split()[0], 16)
        except (OSError, IndexError, ValueError):
            return 0

    def tables(self) -> dict[int, Table]:
        return {f: Table(f, tuple(self.read(n) for n in sysctl_names(f)), self.in_use(f))  # type: ignore[arg-type]
                for f in FAMILIES}

    def preflight(self, need: dict[int, int], lab: str) -> str | None:
        """LabError naming the sysctl and the number needed when the tables cannot hold the lab; else the
        warning of :func:`tight` (or None).  The limits are read once for both."""
        tables = self.tables()
        why = too_small(tables, need, lab)
        if why:
            raise LabError(why)
        return tight(tables, need, lab)

    def raise_held(self) -> bool:
        """Whether some lab holds a raise now (a lab deployed meanwhile joins its holders, see raise_for)."""
        return bool(self.originals())

    def originals(self) -> dict[str, int]:
        """The limits as they were before a raise that is still held (empty: none is)."""
        return hostrecord.originals(self.record)

    # -- the opt-in raise ---------------------------------------------------------------------------------
    def raise_for(self, holder: str, need: dict[int, int], journal, may_raise: bool = True) -> dict[str, int]:
        """Raise the limits that cannot hold ``need`` (never lower one), for lab run directory ``holder``.
        The old values go to the lab's ``journal`` (a callable taking one record) and to the host record -
        the first raise's originals stay there until the last holder releases.  Without ``may_raise`` the
        lab only joins the holders of a raise in force (it fits only thanks to it, so the raise stays until
        it is destroyed too) and fails like the preflight if the limits no longer hold it.  Returns what
        was written."""
        with self._locked() as lock:
            state = lock.state
            tables = self.tables()
            why = too_small(tables, need, Path(holder).name)
            if why and not may_raise:
                raise LabError(why)
            new: dict[str, int] = {}
            for f in FAMILIES if may_raise else ():
                if need.get(f) and not tables[f].fits(need[f]):
                    for name, old, value in zip(sysctl_names(f), tables[f].thresh, tables[f].raised(need[f])):
                        if value > old:
                            new[name] = value
            original = {n: self.read(n) for n in new}
            journal({"kind": "host-sysctl", "what": "neighbour table limits", "set": new, "original": original,
                     "record": str(self.record), "undone_by": "destroy of the last lab that raised them"})
            hostrecord.hold(state, holder, {"need": {str(f): need.get(f, 0) for f in FAMILIES}, "pid": os.getpid()},
                            new, original)
            lock.save()  # the record before the change: a deploy killed here is still undone by destroy
            for name, value in new.items():
                self.write(name, value)
            return new

    def release(self, holder: str) -> dict[str, int]:
        """``holder`` no longer needs a raise.  When no lab holds one any more (a holder whose run directory
        is gone is dropped), every limit still at the value mhlab wrote goes back to its original; one that
        someone changed since is left as they set it.  Returns what was restored."""
        with self._locked() as lock:
            return hostrecord.release(lock.state, holder, self.read, self.write)

    def _locked(self) -> RecordLock:
        return RecordLock(self.record)


@dataclass(frozen=True)
class Admission:
    """One lab's dealings with the host's neighbour tables over its deploy, so that deploy makes one call
    at each step: :meth:`admit` before anything is built (refused, warned or fine), :meth:`claim` once the
    lab's run directory and journal exist (its raise, or joining a raise held by other labs), and
    :meth:`failure_note` when the deploy failed (whether the kernel refused entries meanwhile)."""

    host: HostTables
    lab: str
    need: dict[int, int]
    opt_in: bool  # --raise-neigh-table: the lab may raise the limits
    refused_before: dict[int, int]  # table_fulls when the deploy began

    @classmethod
    def admit(cls, net, lab: str, opt_in: bool, progress, host: HostTables | None = None) -> "Admission":
        """LabError (nothing built yet) when the tables cannot hold the lab and it may not raise them;
        a progress line when it fits only at its usual share."""
        host = host or HostTables()
        need = entries_needed(net)
        if not opt_in:
            warning = host.preflight(need, lab)
            if warning:
                progress(warning)
        return cls(host, lab, need, opt_in, overflowed(host.proc_stat))

    def claim(self, holder: str, journal, progress) -> dict[str, int]:
        """Raise the limits for run directory ``holder`` (with the opt-in), or join a raise in force (the lab
        may fit only thanks to it); journalled.  Returns what was written."""
        if not (self.opt_in or self.host.raise_held()):
            return {}
        raised = self.host.raise_for(holder, self.need, journal, may_raise=self.opt_in)
        if raised:
            progress("raised the host's neighbour table: " + ", ".join(f"{k}={v}" for k, v in raised.items()))
        return raised

    def failure_note(self) -> str | None:
        """What a failed deploy's error should add about the table (see :func:`overflow_note`)."""
        return overflow_note(self.refused_before, overflowed(self.host.proc_stat))
