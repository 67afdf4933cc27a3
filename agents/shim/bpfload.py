"""Compile and load our own BPF object without libbpf: the bpf(2) syscall through ctypes.

Why not libbpf or tc's loader: both want maps pinned in a bpffs, which a lab host's private
mount namespace may not have, and the daemon needs the map file descriptors anyway to
reprogram translations.  The object is small and fixed (``bpf/shim_tc.c``): classic
``"maps"`` section of ``struct map_def`` (type, key size, value size, max entries), one
ELF section per program, and R_BPF_64_64 relocations that point ``ld_imm64`` at a map.
So the loader is: read the ELF, create the maps, patch the map fds into the instructions,
``BPF_PROG_LOAD`` each program.  The kernel verifier's log is returned on failure.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import shutil
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

SOURCE = Path(__file__).with_name("bpf") / "shim_tc.c"
SYS_BPF = 321  # x86_64
BPF_MAP_CREATE, BPF_MAP_LOOKUP_ELEM, BPF_MAP_UPDATE_ELEM, BPF_MAP_DELETE_ELEM, BPF_PROG_LOAD = 0, 1, 2, 3, 5
BPF_ENABLE_STATS, BPF_STATS_RUN_TIME = 32, 0
BPF_PROG_TYPE_SCHED_CLS = 3
BPF_MAP_TYPE_PERCPU_HASH, BPF_MAP_TYPE_PERCPU_ARRAY, BPF_MAP_TYPE_LRU_PERCPU_HASH = 5, 6, 10
PER_CPU_TYPES = (BPF_MAP_TYPE_PERCPU_HASH, BPF_MAP_TYPE_PERCPU_ARRAY, BPF_MAP_TYPE_LRU_PERCPU_HASH)
BPF_MAP_TYPE_RINGBUF = 27
RINGBUF_BUSY, RINGBUF_DISCARD, RINGBUF_HDR = 1 << 31, 1 << 30, 8
BPF_PSEUDO_MAP_FD = 1
R_BPF_64_64 = 1
SHT_SYMTAB, SHT_REL = 2, 9

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class BpfError(OSError):
    """A bpf(2) call failed, or the object could not be built (message says which)."""


def bpf(cmd: int, attr: bytes | ctypes.Array) -> int:
    buf = attr if isinstance(attr, ctypes.Array) else ctypes.create_string_buffer(attr, len(attr))
    ret = _libc.syscall(SYS_BPF, cmd, buf, len(buf))
    if ret < 0:
        err = ctypes.get_errno()
        raise BpfError(err, f"bpf cmd {cmd}: {os.strerror(err)}")
    return ret


def enable_run_time_stats() -> int:
    """Make the kernel time every BPF program run (``run_time_ns``/``run_cnt`` in a program fd's
    fdinfo) for as long as the returned fd stays open: how the benchmark measures our programs'
    own cost without bpftool."""
    return bpf(BPF_ENABLE_STATS, struct.pack("<I", BPF_STATS_RUN_TIME))


def possible_cpus(spec: str | None = None) -> int:
    """How many values a per-CPU map holds: the CPUs the kernel counts as possible (``0-3,6``)."""
    if spec is None:
        spec = Path("/sys/devices/system/cpu/possible").read_text()
    last = 0
    for part in spec.strip().split(","):
        last = max(last, int(part.rpartition("-")[2]))
    return last + 1


def _addr(buf: ctypes.Array) -> int:
    return ctypes.addressof(buf)


@dataclass
class BpfMap:
    """A map we created: its fd and sizes; keys and values are raw bytes."""

    name: str
    fd: int
    key_size: int
    value_size: int
    map_type: int = 0
    max_entries: int = 0

    @property
    def per_cpu(self) -> bool:
        return self.map_type in PER_CPU_TYPES

    def _elem(self, cmd: int, key: bytes, value: ctypes.Array | None, flags: int = 0) -> int:
        kbuf = ctypes.create_string_buffer(key, self.key_size)
        attr = struct.pack("<IIQQQ", self.fd, 0, _addr(kbuf), _addr(value) if value is not None else 0, flags)
        return bpf(cmd, attr)

    def update(self, key: bytes, value: bytes) -> None:
        self._elem(BPF_MAP_UPDATE_ELEM, key, ctypes.create_string_buffer(value, self.value_size))

    def lookup(self, key: bytes) -> bytes | None:
        """The value; of a per-CPU map, every possible CPU's value one after the other, each padded
        to 8 octets (``values``)."""
        size = self.value_size
        if self.per_cpu:
            size = (size + 7) // 8 * 8 * possible_cpus()
        out = ctypes.create_string_buffer(size)
        try:
            self._elem(BPF_MAP_LOOKUP_ELEM, key, out)
        except BpfError as exc:
            if exc.errno == 2:  # ENOENT
                return None
            raise
        return out.raw

    def values(self, key: bytes) -> list[bytes]:
        """A per-CPU map's value on each possible CPU (a plain map's value alone)."""
        raw = self.lookup(key)
        if raw is None:
            return []
        if not self.per_cpu:
            return [raw]
        step = (self.value_size + 7) // 8 * 8
        return [raw[i:i + self.value_size] for i in range(0, len(raw), step)]

    def delete(self, key: bytes) -> None:
        try:
            self._elem(BPF_MAP_DELETE_ELEM, key, None)
        except BpfError as exc:
            if exc.errno != 2:
                raise


class RingBuffer:
    """The consumer side of a ``BPF_MAP_TYPE_RINGBUF`` map, as the kernel lays it out for mmap.

    Page 0 holds the consumer position (ours to write); page 1 the producer position; then the data
    area, mapped twice in a row so that a record that wraps reads contiguously.  Each record is an
    8-octet header (length, busy and discard bits) and its data, padded to 8 octets.  The map's fd
    is readable (epoll) while records wait: ``fileno`` is what a selector watches.
    """

    def __init__(self, fd: int, size: int) -> None:
        self.fd, self.size = fd, size
        page = mmap.PAGESIZE
        self.consumer = mmap.mmap(fd, page, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
        self.producer = mmap.mmap(fd, page + 2 * size, mmap.MAP_SHARED, mmap.PROT_READ, offset=page)
        self.data_at = page

    def fileno(self) -> int:
        return self.fd

    def drain(self) -> list[bytes]:
        """Every committed record, oldest first; the space they took is handed back to the kernel."""
        out = []
        cons, = struct.unpack_from("<Q", self.consumer, 0)
        prod, = struct.unpack_from("<Q", self.producer, 0)
        while cons < prod:
            at = self.data_at + (cons & (self.size - 1))
            header, = struct.unpack_from("<I", self.producer, at)
            if header & RINGBUF_BUSY:
                break  # being written: the next drain takes it
            length = header & ~(RINGBUF_BUSY | RINGBUF_DISCARD)
            if not header & RINGBUF_DISCARD:
                out.append(self.producer[at + RINGBUF_HDR:at + RINGBUF_HDR + length])
            cons += (length + RINGBUF_HDR + 7) & ~7
        struct.pack_into("<Q", self.consumer, 0, cons)
        return out

    def close(self) -> None:
        self.consumer.close()
        self.producer.close()


@dataclass
class BpfObject:
    maps: dict[str, BpfMap] = field(default_factory=dict)
    programs: dict[str, int] = field(default_factory=dict)  # ELF section name -> prog fd

    def close(self) -> None:
        for fd in [*self.programs.values(), *(m.fd for m in self.maps.values())]:
            os.close(fd)
        self.programs.clear()
        self.maps.clear()


def compile_object(out_dir: str, source: Path = SOURCE) -> Path:
    """clang -target bpf; the Debian packages clang and libbpf-dev provide both."""
    clang = shutil.which("clang")
    if clang is None:
        raise BpfError(2, "clang not found (Debian: apt-get install clang libbpf-dev)")
    target = Path(out_dir) / "shim_tc.o"
    multiarch = "/usr/include/x86_64-linux-gnu"
    cmd = [clang, "-O2", "-g0", "-target", "bpf", "-Wall", "-I", multiarch, "-c", str(source), "-o", str(target)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise BpfError(22, f"clang failed: {proc.stderr.strip()[-2000:]}")
    return target


def _sections(elf: bytes) -> list[dict]:
    if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        raise BpfError(22, "not a 64-bit little-endian ELF object")
    shoff, = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)
    heads = []
    for i in range(shnum):
        name, stype, _flags, _a, off, size, link, info, _al, entsize = struct.unpack_from("<IIQQQQIIQQ", elf, shoff + i * shentsize)
        heads.append({"name_off": name, "type": stype, "off": off, "size": size, "link": link, "info": info, "entsize": entsize})
    strtab = heads[shstrndx]
    for h in heads:
        h["name"] = _cstr(elf, strtab["off"] + h["name_off"])
        h["data"] = elf[h["off"]:h["off"] + h["size"]]
    return heads


def _cstr(data: bytes, offset: int) -> str:
    return data[offset:data.index(b"\0", offset)].decode()


def _load_program(prog_type: int, name: str, insns: bytes, license_buf: ctypes.Array) -> int:
    """BPF_PROG_LOAD; on refusal, load again with the verifier log to say why."""
    code = ctypes.create_string_buffer(insns, len(insns))
    for level in (0, 1):
        log = ctypes.create_string_buffer(1 << 20 if level else 1)
        attr = struct.pack("<IIQQIIQII16s", prog_type, len(insns) // 8, _addr(code), _addr(license_buf),
                           level, len(log) if level else 0, _addr(log) if level else 0, 0, 0,
                           name.replace("/", "_").encode()[:15])
        try:
            return bpf(BPF_PROG_LOAD, attr + bytes(64))
        except BpfError as exc:
            if level:
                raise BpfError(exc.errno, f"verifier refused {name}: {log.value.decode(errors='replace')[-3000:]}") from exc
    raise AssertionError("unreachable")


def load_object(path: Path, prog_type: int = BPF_PROG_TYPE_SCHED_CLS) -> BpfObject:
    elf = path.read_bytes()
    sections = _sections(elf)
    symtab = next(s for s in sections if s["type"] == SHT_SYMTAB)
    symstr = sections[symtab["link"]]
    symbols = []
    for i in range(symtab["size"] // 24):
        name, _info, _other, shndx, value, _size = struct.unpack_from("<IBBHQQ", symtab["data"], i * 24)
        symbols.append((_cstr(elf, symstr["off"] + name), shndx, value))
    maps_index = next(i for i, s in enumerate(sections) if s["name"] == "maps")
    license_section = next(s for s in sections if s["name"] == "license")
    obj = BpfObject()
    try:
        for name, shndx, value in symbols:
            if shndx == maps_index:
                mtype, ksize, vsize, entries = struct.unpack_from("<IIII", sections[maps_index]["data"], value)
                fd = bpf(BPF_MAP_CREATE, struct.pack("<IIIII", mtype, ksize, vsize, entries, 0) + bytes(100))
                obj.maps[name] = BpfMap(name, fd, ksize, vsize, mtype, entries)
        by_offset = {value: name for name, shndx, value in symbols if shndx == maps_index}
        for rel in (s for s in sections if s["type"] == SHT_REL):
            target = sections[rel["info"]]
            insns = bytearray(target["data"])
            for j in range(rel["size"] // 16):
                offset, info = struct.unpack_from("<QQ", rel["data"], j * 16)
                _name, shndx, value = symbols[info >> 32]
                if info & 0xFFFFFFFF != R_BPF_64_64 or shndx != maps_index:
                    raise BpfError(22, f"unsupported relocation in {target['name']}")
                insns[offset + 1] = (insns[offset + 1] & 0x0F) | (BPF_PSEUDO_MAP_FD << 4)
                struct.pack_into("<i", insns, offset + 4, obj.maps[by_offset[value]].fd)
            target["patched"] = bytes(insns)
        license_buf = ctypes.create_string_buffer(license_section["data"].rstrip(b"\0") + b"\0")
        for sec in sections:
            if not sec["name"].startswith("tc/"):
                continue
            obj.programs[sec["name"]] = _load_program(prog_type, sec["name"], sec.get("patched", sec["data"]), license_buf)
    except BaseException:
        obj.close()
        raise
    return obj
