"""Kernel same-page merging (KSM) for a lab's FRR daemons: an opt-in that trades ksmd's CPU for memory.

Every router of a large lab runs its own zebra and bgpd, and most of their private memory is the same
start-up heap (FRR's CLI command graph, northbound trees) built the same way in every process: 503 routers
of a 250-site lab hold ~6.7 GB of it.  KSM lets the kernel keep one copy of pages that are byte-identical.
Two parts:

- each daemon starts through a tiny wrapper (:func:`wrapper_prefix`) that marks the whole process mergeable
  (``prctl(PR_SET_MEMORY_MERGE)``, inherited across exec and fork since Linux 6.7) and, unless asked to keep
  it, turns address-space randomisation off for it (``personality(ADDR_NO_RANDOMIZE)``): heaps then sit at the
  same addresses in every router, so pages full of pointers are identical too.  The wrapper is C (a Python
  one costs ~50 ms of CPU per daemon, 50 CPU-s for 1,006 daemons), compiled once per host from
  :data:`WRAPPER_SOURCE` into :data:`hostrecord.HOST_DIR`, named by its source's hash;
- ksmd must run (``/sys/kernel/mm/ksm/run``), fast enough to matter (``pages_to_scan``,
  ``sleep_millisecs``).  That is host state outside every lab: :class:`HostKsm` sets it only when asked,
  journals the old values in the lab's journal and in one host-wide record (``testbed.hostrecord``), and the
  destroy of the last lab holding it puts back what is still as mhlab set it.  It never slows KSM down: a
  host already running ksmd keeps its ``run``, and a faster scan rate than mhlab's stays.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import hostrecord
from .errors import LabError

SYS_KSM = Path("/sys/kernel/mm/ksm")
HOST_RECORD = hostrecord.HOST_DIR / "ksm.json"
# ksmd's settings while a lab holds KSM on: 4,000 pages (16 MB) every 20 ms, 800 MB/s, a full scan of a
# 250-site lab's daemons (~1.7 M pages) in a few seconds of ksmd time (see docs/scale.md for its CPU)
WANT = {"run": 1, "pages_to_scan": 4000, "sleep_millisecs": 20}
# which way is "more KSM" for each setting: mhlab never moves one the other way
FASTER = {"run": lambda old, new: old == 0 and new == 1,
          "pages_to_scan": lambda old, new: new > old,
          "sleep_millisecs": lambda old, new: new < old}
NO_ASLR_FLAG = "--no-aslr"

WRAPPER_SOURCE = r"""/* mergeexec [--no-aslr] PROGRAM [ARG...]: run PROGRAM with all its memory open to KSM. */
#include <stdio.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <unistd.h>
#ifndef PR_SET_MEMORY_MERGE
#define PR_SET_MEMORY_MERGE 67
#endif
int main(int argc, char **argv) {
    int i = 1;
    if (i < argc && strcmp(argv[i], "--no-aslr") == 0) {
        int now = personality(0xffffffff);
        if (now == -1 || personality(now | ADDR_NO_RANDOMIZE) == -1) {
            perror("mergeexec: personality(ADDR_NO_RANDOMIZE)");
            return 126;
        }
        i++;
    }
    if (i >= argc) {
        fprintf(stderr, "usage: mergeexec [--no-aslr] PROGRAM [ARG...]\n");
        return 2;
    }
    if (prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0) != 0) {
        perror("mergeexec: prctl(PR_SET_MEMORY_MERGE) (Linux >= 6.4, as root)");
        return 126;
    }
    execv(argv[i], argv + i);
    perror(argv[i]);
    return 127;
}
"""


@dataclass(frozen=True)
class KsmOptions:
    """How a lab's FRR daemons are opened to KSM: ``keep_aslr`` leaves address randomisation on (fewer
    identical pages, see docs/scale.md); ``budget_gb`` paces the daemons' start so the lab never holds more
    than that (see :class:`Pacer`)."""

    keep_aslr: bool = False
    budget_gb: float | None = None

    def pacer(self, routers: int) -> Pacer | None:
        """The pacer of a lab of ``routers`` FRR routers under this budget (None: no budget), made when the
        deploy begins so that everything the lab builds counts."""
        if self.budget_gb is None:
            return None
        return Pacer(int(self.budget_gb * 2**20), routers * RESERVE_KB_PER_ROUTER)


# what one router's zebra + bgpd hold before ksmd reaches them (4.9 + 9.1 MB private measured) plus room for
# the BGP buffers that come with its sessions
UNMERGED_KB_PER_ROUTER = 15 * 1024
PACE_MIN_BATCH = 10  # routers: a paced start waits until at least this many fit (or all that are left)
PACE_MAX_BATCH = 50  # routers started at once at most, so the footprint is measured often enough
PACE_STALL = 60.0  # s the lab may stay too big without ksmd shrinking it before the deploy gives up
PACE_PROGRESS_KB = 8 * 1024  # a shrink smaller than this is noise, not ksmd's progress
# kept free of the budget per router of the lab for what comes after the start: BGP's sessions (peer buffers,
# the ISPs' tables of 250 peers) and the readiness checks' vtysh; a 250-site lab paced to the whole budget
# passed it by 0.5 GB once its sessions came up
RESERVE_KB_PER_ROUTER = 1024


def mem_available_kb(meminfo: Path = Path("/proc/meminfo")) -> int:
    """The host's MemAvailable (kB): what it can still hand out without swapping or killing."""
    for line in meminfo.read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1])
    raise LabError(f"{meminfo} has no MemAvailable line")


@dataclass
class Pacer:
    """Starts a lab's routers in batches so the lab never holds more than ``budget_kb``: ksmd merges the
    routers already running while the next batch waits.  The lab's footprint is the drop of the host's
    MemAvailable since the pacer was made (at the start of the deploy: namespaces, veths and bridges count),
    so other jobs' allocations count against the budget too - the host is what the budget protects.
    ``reserve_kb`` of the budget stays free for what grows once the routers run (see
    :data:`RESERVE_KB_PER_ROUTER`).  Before a batch it waits until at least :data:`PACE_MIN_BATCH` routers
    fit (``per_router_kb`` each, unmerged); when the footprint stops shrinking for ``stall`` s the lab
    cannot fit and the deploy fails (LabError, naming the budget).  Clock, sleep and the MemAvailable
    reader are parameters for tests."""

    budget_kb: int
    reserve_kb: int = 0
    read_available: Callable[[], int] = mem_available_kb
    per_router_kb: int = UNMERGED_KB_PER_ROUTER
    stall: float = PACE_STALL
    interval: float = 0.2
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    start_kb: int = field(init=False)
    peak_kb: int = field(default=0, init=False)  # the highest footprint seen
    waited: float = field(default=0.0, init=False)  # s spent waiting for ksmd
    batches: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.start_kb = self.read_available()

    def footprint(self) -> int:
        """kB the lab (and whatever else started meanwhile) took from the host since the start."""
        kb = self.start_kb - self.read_available()
        self.peak_kb = max(self.peak_kb, kb)
        return kb

    def fits(self) -> int:
        """Routers that could start now without the lab passing its budget."""
        return max(0, (self.budget_kb - self.reserve_kb - self.footprint()) // self.per_router_kb)

    def next_batch(self, left: int) -> int:
        """How many of the ``left`` routers to start now, once enough fit (see the class)."""
        t0 = since = self.clock()
        best = None
        while True:
            n = min(left, PACE_MAX_BATCH, self.fits())
            if n >= min(left, PACE_MIN_BATCH):
                self.waited += self.clock() - t0
                self.batches += 1
                return n
            now, kb = self.clock(), self.start_kb - self.read_available()
            if best is None or kb < best - PACE_PROGRESS_KB:
                best, since = kb, now
            elif now - since > self.stall:
                raise LabError(
                    f"the lab holds {kb / 2**20:.2f} GB of its --ksm-budget of {self.budget_kb / 2**20:.2f} GB "
                    f"(MemAvailable's drop since the deploy began, other jobs included; "
                    f"{self.reserve_kb / 2**20:.2f} GB of it kept for BGP's sessions) with {left} routers still "
                    f"to start ({self.per_router_kb // 1024} MB each before ksmd merges them), and ksmd freed no "
                    f"more in {self.stall:.0f} s: give a larger budget (or none), or deploy fewer sites")
            self.sleep(self.interval)


def wrapper_path(host_dir: Path = hostrecord.HOST_DIR) -> Path:
    """Where the wrapper of this source lives (a changed source is another file, built anew)."""
    digest = hashlib.sha256(WRAPPER_SOURCE.encode()).hexdigest()[:12]
    return host_dir / f"mergeexec-{digest}"


def wrapper_prefix(options: KsmOptions, wrapper: Path) -> list[str]:
    """What goes before a daemon's argv to start it through the wrapper (which execs the daemon: same pid,
    same process name, and the recorded argv restarts it the same way)."""
    return [str(wrapper), *([] if options.keep_aslr else [NO_ASLR_FLAG])]


def build_wrapper(host_dir: Path = hostrecord.HOST_DIR) -> Path:
    """The compiled wrapper, built with the host's C compiler when missing (~0.1 s, once per host)."""
    target = wrapper_path(host_dir)
    if target.exists():
        return target
    cc = shutil.which("cc") or shutil.which("clang") or shutil.which("gcc")
    if cc is None:
        raise LabError("--ksm starts FRR through a small C wrapper and needs a C compiler: apt-get install clang")
    host_dir.mkdir(parents=True, exist_ok=True)
    src = target.with_suffix(".c")
    src.write_text(WRAPPER_SOURCE)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    res = subprocess.run([cc, "-O2", "-o", str(tmp), str(src)], capture_output=True, text=True, timeout=60)
    if res.returncode != 0:
        raise LabError(f"compiling the KSM wrapper ({src}) failed: {(res.stderr or res.stdout).strip()[-500:]}")
    os.chmod(tmp, 0o755)
    os.replace(tmp, target)
    return target


def changes(current: dict[str, int], want: dict[str, int] = WANT) -> dict[str, int]:
    """The settings to write so ksmd runs at least as fast as ``want``: never one that would slow it, and
    ``run`` only from 0 (off): a host that runs KSM already, or unmerges (2), keeps its mode."""
    return {name: value for name, value in want.items() if FASTER[name](current[name], value)}


@dataclass(frozen=True)
class HostKsm:
    """The host's KSM settings, read and (on request) set through ``sys_ksm``, with the host-wide
    ``record`` of the labs holding them.  Paths are parameters so tests use a folder."""

    sys_ksm: Path = SYS_KSM
    record: Path = HOST_RECORD

    def available(self) -> bool:
        return (self.sys_ksm / "run").exists()

    def read(self, name: str) -> int:
        return int((self.sys_ksm / name).read_text().split()[0])

    def write(self, name: str, value: int) -> None:
        (self.sys_ksm / name).write_text(f"{value}\n")

    def stats(self) -> dict[str, int]:
        """ksmd's counters (``full_scans``, ``pages_sharing``, ``pages_shared``, ``general_profit`` ...)."""
        out = {}
        for path in sorted(self.sys_ksm.iterdir()):
            try:
                out[path.name] = int(path.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
        return out

    def hold(self, holder: str, journal) -> dict[str, int]:
        """Turn ksmd on (and fast) for lab run directory ``holder``; the old values go to the lab's
        ``journal`` and the host record before anything is written.  Returns what was written."""
        if not self.available():
            raise LabError(f"this kernel has no KSM ({self.sys_ksm} missing: CONFIG_KSM): deploy without --ksm")
        with hostrecord.RecordLock(self.record) as lock:
            new = changes({name: self.read(name) for name in WANT})
            original = {name: self.read(name) for name in new}
            journal({"kind": "host-ksm", "what": "kernel same-page merging", "set": new, "original": original,
                     "record": str(self.record), "undone_by": "destroy of the last lab that turned it on"})
            hostrecord.hold(lock.state, holder, {"pid": os.getpid()}, new, original)
            lock.save()  # the record before the change: a deploy killed here is still undone by destroy
            for name, value in new.items():
                self.write(name, value)
            return new

    def release(self, holder: str) -> dict[str, int]:
        """``holder`` no longer needs KSM; the last holder out restores what is still as mhlab set it."""
        with hostrecord.RecordLock(self.record) as lock:
            return hostrecord.release(lock.state, holder, self.read, self.write)


def process_stat(pid: int) -> dict[str, str]:
    """``/proc/PID/ksm_stat`` (``ksm_merge_any: yes`` for a process the wrapper started, its merged pages
    and profit); empty when the process is gone or the kernel has no such file."""
    try:
        lines = Path(f"/proc/{pid}/ksm_stat").read_text().splitlines()
    except OSError:
        return {}
    # "ksm_rmap_items 0" ... "ksm_merge_any: yes": a name (with or without a colon), then its value
    return {words[0].rstrip(":"): words[1] for words in (line.split(None, 1) for line in lines) if len(words) == 2}
