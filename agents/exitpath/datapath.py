"""The kernel side of the exit path cache: tc programs (``bpf/exitpath_tc.c``), their maps, route hints.

What lives where, and why:

- Steps 1-2 (a cached destination) cost nothing per packet: an entry becomes a /128 route hint
  ``DST via GW dev DEV src SRC expires LIFETIME`` (kernel source selection takes a route's
  preferred source before RFC 6724's rules), so an unmodified application's ``connect()`` picks the
  cached source by itself, and the cache map tells the egress program not to race.
- Steps 3-4 (no entry) are in the tc programs: the initial packet is sent once per source address
  and the first reply chooses (see the C file).  When a copy wins, that flow's packets are
  rewritten in both directions for the flow's lifetime (one hash lookup per packet).
- Fail open: the programs hang on tcx links (BPF_LINK_CREATE), which the kernel removes when the
  last file descriptor closes, i.e. when the agent exits or is killed; route hints carry the entry's
  lifetime and vanish with it.  Flows that a copy won lose their rewrite when the agent dies (those
  connections break); every other connection, and every new one, behaves as without the agent.

The maps are created by ``agents.shim.bpfload`` (the project's loader without libbpf); this module
adds what the exit path needs on top: tcx links, map iteration, and the losing attempts' RSTs.
"""

from __future__ import annotations

import ctypes
import ipaddress
import json
import math
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from agents.marks import SOURCE_CHOSEN
from agents.shim import bpfload

Address = ipaddress.IPv6Address
SOURCE = Path(__file__).with_name("bpf") / "exitpath_tc.c"
MAX_SOURCES = 4
BPF_MAP_GET_NEXT_KEY, BPF_LINK_CREATE = 4, 28
BPF_TCX_INGRESS, BPF_TCX_EGRESS = 46, 47
SO_MARK = 36
DEFAULT_MARK = 0x65780000  # on our copies and RSTs: the programs let them pass untouched
ROUTE_PROTO = "199"        # marks our route hints (`ip -6 route show proto 199`)
F_RACING, F_DIRECT, F_REWRITTEN, F_TIMED, F_CLAIMED, F_CACHED, F_CHOSEN, F_CHOSEN_OK = 1, 2, 3, 4, 5, 6, 7, 8
FLOW_STATES = {F_RACING: "racing", F_DIRECT: "direct", F_REWRITTEN: "rewritten", F_TIMED: "timed",
               F_CLAIMED: "claimed", F_CACHED: "cached", F_CHOSEN: "chosen", F_CHOSEN_OK: "chosen-answered"}
STAT_NAMES = ("races", "copies", "copy_failed", "rewritten_out", "rewritten_in", "loser_dropped",
              "loser_to_kernel", "icmp_dropped", "chosen_kept", "chosen_raced")
FKEY = struct.Struct("<16s16s2s2sB3x")   # ports stay in network order, as the program stores them
FLOW = struct.Struct("<16sQQI4x")


class DataPathError(OSError):
    """The kernel side could not be set up (the message says which step)."""


def real_devices() -> list[str]:
    """Ethernet-like devices of this namespace (type 1), not loopback."""
    out = []
    for dev in sorted(Path("/sys/class/net").iterdir()):
        try:
            if dev.name != "lo" and (dev / "type").read_text().strip() == "1":
                out.append(dev.name)
        except OSError:
            continue
    return out


def compile_object(workdir: Path) -> Path:
    """clang -target bpf -mcpu=v3: the programs use compare-and-swap (BPF atomics need v3)."""
    clang = shutil.which("clang")
    if clang is None:
        raise DataPathError(2, "clang not found (Debian: apt-get install clang libbpf-dev)")
    target = workdir / "exitpath_tc.o"
    proc = subprocess.run([clang, "-O2", "-g0", "-target", "bpf", "-mcpu=v3", "-Wall", "-I",
                           "/usr/include/x86_64-linux-gnu", "-c", str(SOURCE), "-o", str(target)],
                          capture_output=True, text=True)
    if proc.returncode:
        raise DataPathError(22, f"clang failed: {proc.stderr.strip()[-2000:]}")
    return target


def tcx_attach(prog_fd: int, ifindex: int, attach_type: int) -> int:
    """A tcx link: the program stays attached exactly as long as the returned fd is open."""
    return bpfload.bpf(BPF_LINK_CREATE, struct.pack("<IIII", prog_fd, ifindex, attach_type, 0) + bytes(48))


def map_keys(bmap: bpfload.BpfMap) -> list[bytes]:
    keys: list[bytes] = []
    key = ctypes.create_string_buffer(bmap.key_size)
    nxt = ctypes.create_string_buffer(bmap.key_size)
    first = True
    while True:
        attr = struct.pack("<IIQQ", bmap.fd, 0, 0 if first else ctypes.addressof(key), ctypes.addressof(nxt))
        try:
            bpfload.bpf(BPF_MAP_GET_NEXT_KEY, attr + bytes(16))
        except bpfload.BpfError as exc:
            if exc.errno == 2:  # ENOENT: the end
                return keys
            raise
        keys.append(nxt.raw)
        ctypes.memmove(key, nxt, bmap.key_size)
        first = False


def mono_ns(t: float) -> int:
    return int(t * 1e9)


@dataclass(frozen=True)
class Flow:
    local: Address
    peer: Address
    lport: int
    pport: int
    proto: int
    state: str
    src: Address | None


@dataclass
class KernelPath:
    """tc programs on ``devices`` (default: every real device) for a host with ``sources``."""

    sources: tuple[Address, ...]
    devices: tuple[str, ...] = ()
    mark: int = DEFAULT_MARK
    route_hints: bool = True
    chosen_mark: int = SOURCE_CHOSEN
    obj: bpfload.BpfObject | None = None
    links: list[int] = field(default_factory=list)
    hinted: set[Address] = field(default_factory=set)
    seen_last: dict[bytes, int] = field(default_factory=dict)
    resets_sent: int = 0
    raw: socket.socket | None = None

    def start(self) -> None:
        if not 2 <= len(self.sources) <= MAX_SOURCES:
            raise DataPathError(22, f"the data path handles 2 to {MAX_SOURCES} source addresses "
                                    f"(got {len(self.sources)})")
        devices = self.devices or tuple(real_devices())
        if not devices:
            raise DataPathError(19, "no network device to attach to")
        with tempfile.TemporaryDirectory(prefix="exitpath-bpf-") as workdir:
            self.obj = bpfload.load_object(compile_object(Path(workdir)))
        sources = b"".join(s.packed for s in self.sources).ljust(16 * MAX_SOURCES, b"\0")
        config = struct.pack("<II", len(self.sources), self.mark) + sources + struct.pack("<I", self.chosen_mark)
        self.obj.maps["config"].update(struct.pack("<I", 0), config)
        try:
            for dev in devices:
                index = socket.if_nametoindex(dev)
                self.links.append(tcx_attach(self.obj.programs["tc/egress"], index, BPF_TCX_EGRESS))
                self.links.append(tcx_attach(self.obj.programs["tc/ingress"], index, BPF_TCX_INGRESS))
        except (OSError, bpfload.BpfError) as exc:
            self.stop()
            raise DataPathError(exc.errno or 22, f"tcx attach to {dev} failed ({exc}); the kernel needs tcx "
                                                 "(Linux 6.6 or later)") from exc
        self.devices = devices
        self.raw = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_TCP)
        self.raw.setsockopt(socket.SOL_SOCKET, SO_MARK, self.mark)
        self.raw.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_CHECKSUM, 16)

    # --- what the engine asks for -----------------------------------------------------------

    def program(self, dst: Address, src: Address, expires: float) -> None:
        self.obj.maps["cache"].update(dst.packed, src.packed + struct.pack("<Q", mono_ns(expires)))
        if self.route_hints:
            self._hint(dst, src, max(1, math.ceil(expires - time.monotonic())))

    def withdraw(self, dst: Address) -> None:
        self.obj.maps["cache"].delete(dst.packed)
        if dst in self.hinted:
            subprocess.run(["ip", "-6", "route", "del", f"{dst}/128", "proto", ROUTE_PROTO], capture_output=True)
            self.hinted.discard(dst)

    def _hint(self, dst: Address, src: Address, seconds: int) -> None:
        """``DST/128 ... src SRC expires N``: how the kernel itself picks the cached source (steps 1-2)."""
        got = subprocess.run(["ip", "-6", "-j", "route", "get", str(dst), "from", str(src)], capture_output=True,
                             text=True)
        try:
            route = json.loads(got.stdout or "[]")[0]
        except (ValueError, IndexError):
            return  # no route from that source: nothing to hint (the race keeps deciding)
        via = ["via", route["gateway"]] if route.get("gateway") else []
        subprocess.run(["ip", "-6", "route", "replace", f"{dst}/128", *via, "dev", route["dev"], "src", str(src),
                        "expires", str(seconds), "proto", ROUTE_PROTO], capture_output=True)
        self.hinted.add(dst)

    def decide(self, dst: Address, src: Address) -> int:
        """Step 5 for flows still racing to ``dst``: they continue from ``src``; returns how many."""
        flows = self.obj.maps["flows"]
        n = 0
        for key in map_keys(flows):
            if key[16:32] != dst.packed:
                continue
            raw = flows.lookup(key)
            if raw is None:
                continue
            _src, started, last, state = FLOW.unpack(raw)
            if state == F_RACING:
                flows.update(key, FLOW.pack(src.packed, started, last, F_TIMED))
                n += 1
        return n

    # --- what the kernel saw -----------------------------------------------------------------

    def poll(self) -> tuple[list[tuple[float, Address, Address]], list[tuple[float, Address, Address]]]:
        """(races started: time, destination, source), (packets received: time, peer, our address)."""
        races = []
        rmap = self.obj.maps["races"]
        for key in map_keys(rmap):
            raw = rmap.lookup(key)
            rmap.delete(key)
            if raw is not None:
                src, started = struct.unpack("<16sQ", raw)
                races.append((started / 1e9, Address(key), Address(src)))
        received = []
        smap = self.obj.maps["seen"]
        for key in map_keys(smap):
            raw = smap.lookup(key)
            if raw is None:
                continue
            first, last, _packets = struct.unpack("<QQQ", raw)
            before = self.seen_last.get(key)
            if before == last:
                continue
            peer, local = Address(key[:16]), Address(key[16:])
            if before is None:
                received.append((first / 1e9, peer, local))
            if last != first or before is not None:
                received.append((last / 1e9, peer, local))
            self.seen_last[key] = last
        self._send_resets()
        return sorted(races, key=lambda r: r[0]), sorted(received, key=lambda r: r[0])

    def _send_resets(self) -> None:
        """The losing attempt from the application's own address got its SYN-ACK: reset it."""
        rmap = self.obj.maps["resets"]
        for key in map_keys(rmap):
            raw = rmap.lookup(key)
            rmap.delete(key)
            if raw is None:
                continue
            local, peer, lport, pport, _proto = FKEY.unpack(key)
            seq = raw[:4]
            segment = lport + pport + seq + bytes(4) + bytes([5 << 4, 0x04]) + bytes(6)
            pktinfo = struct.pack("16sI", local, 0)
            try:
                self.raw.sendmsg([segment], [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, pktinfo)], 0,
                                 (str(Address(peer)), 0))
                self.resets_sent += 1
            except OSError:
                pass

    def flows(self) -> list[Flow]:
        out = []
        fmap = self.obj.maps["flows"]
        for key in map_keys(fmap):
            raw = fmap.lookup(key)
            if raw is None:
                continue
            local, peer, lport, pport, proto = FKEY.unpack(key)
            src, _started, _last, state = FLOW.unpack(raw)
            out.append(Flow(Address(local), Address(peer), int.from_bytes(lport, "big"), int.from_bytes(pport, "big"),
                            proto, FLOW_STATES.get(state, str(state)),
                            Address(src) if state in (F_REWRITTEN, F_TIMED, F_CACHED) else None))
        return out

    def expire_flows(self, idle: float) -> int:
        """Forget flows without a packet for ``idle`` seconds (the maps are LRU-bounded as well)."""
        fmap, cutoff, n = self.obj.maps["flows"], mono_ns(time.monotonic() - idle), 0
        for key in map_keys(fmap):
            raw = fmap.lookup(key)
            if raw is not None and FLOW.unpack(raw)[2] < cutoff:
                fmap.delete(key)
                n += 1
        return n

    def stats(self) -> dict[str, int]:
        stats = self.obj.maps["stats"]
        out = {name: struct.unpack("<Q", stats.lookup(struct.pack("<I", i)))[0] for i, name in enumerate(STAT_NAMES)}
        return {**out, "resets_sent": self.resets_sent}

    def stop(self) -> None:
        for fd in self.links:
            os.close(fd)
        self.links.clear()
        for dst in list(self.hinted):
            subprocess.run(["ip", "-6", "route", "del", f"{dst}/128", "proto", ROUTE_PROTO], capture_output=True)
        self.hinted.clear()
        if self.raw is not None:
            self.raw.close()
            self.raw = None
        if self.obj is not None:
            self.obj.close()
            self.obj = None
