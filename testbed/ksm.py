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
from dataclasses import dataclass
from pathlib import Path

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
    identical pages, see docs/scale.md)."""

    keep_aslr: bool = False


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
