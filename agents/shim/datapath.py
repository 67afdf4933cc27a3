"""The shim data path: turns a ``plan.Plan`` into kernel state, and reports what it carried.

Backends (``--datapath``):

- ``ebpf`` (default when clang is present): tc programs (``bpf/shim_tc.c``) and BPF maps.
  Untranslated packets never leave the kernel's normal path (one hash lookup at tc).
- ``nfqueue`` (not written yet): the fallback without clang would queue translated packets
  to the daemon and rewrite them with ``packet.py`` (already written and unit-tested).
- ``none``: control plane only (contexts and REAP, no packet is rewritten).

A translated context gets a /128 route to its peer ULID through the device and gateway of
the locator pair in use, with a lower MTU (``netops.Routes.route_translated``); the real device's
tc egress rewrites its packets there.  ``poll`` returns what REAP must hear about (data
sent, data received on a pair), taken from the counters, so no per-packet sniffing is
needed; it also follows the locator pairs' routes (a gateway that changed moves the /128).

The kernel also says when a context *goes quiet* (``quiet_ring``: it sends and has heard nothing
from its peer for 10 ms): ``quiet_signals`` drains those records and ``last_rx`` tells whether
the peer was heard again since.  That is what lets the daemon look at TCP (``ulp``) only when
something may have failed, instead of 50 times a second under every flow.
"""

from __future__ import annotations

import ipaddress
import struct
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from . import bpfload, netops
from .plan import Plan, Translation, UlidPair

Address = ipaddress.IPv6Address
# How much lower a translation route's MTU is than its device's (TCP's MSS follows it).  8 octets make
# room for the payload header.  The other 32: translated TCP crosses the lab's veths as 64 KiB
# GSO segments, and a Linux router checks such a segment against its MTU as "40 + TCP header
# length + gso_size", reading the TCP header length where the shim header sits (it does not
# parse protocol 140); that misread is at most 60 octets against a real 20-60, so a margin of
# 40 keeps every router's check true.  With 8, 5 segments in 16 drew Packet Too Big.
MTU_MARGIN = 40
ROUTE_CHECK_INTERVAL = 1.0  # seconds between checks that a pair's next hop has not moved
STAT_NAMES = ("translated_out", "restored_in", "unknown_in", "malformed_in", "out_redirected",
              "out_failed", "no_route", "in_failed", "out_too_big")


@dataclass(frozen=True)
class QuietSignal:
    """The context of ``ulids`` sent a packet with nothing heard from its peer since ``last_rx``
    (the kernel's CLOCK_MONOTONIC nanoseconds of the last packet in; 0: none yet)."""

    ulids: tuple[Address, Address]
    last_rx: int


def parse_quiet(record: bytes) -> QuietSignal | None:
    """``struct quiet`` of shim_tc.c: the ULID pair, then last_rx_ns."""
    if len(record) < 40:
        return None
    return QuietSignal((Address(record[:16]), Address(record[16:32])), struct.unpack_from("<Q", record, 32)[0])


@dataclass(frozen=True)
class Observation:
    """A data packet went ``local`` -> ``peer`` (outgoing) or came ``peer`` -> ``local``."""

    local: Address
    peer: Address
    outgoing: bool


class DataPath:
    """No data path: nothing is rewritten (the control plane alone)."""

    mode = "none"

    def start(self) -> None:
        pass

    def apply(self, plan: Plan) -> None:
        pass

    def poll(self) -> list[Observation]:
        return []

    def describe(self, ulids: UlidPair) -> dict[str, Any]:
        return {"mode": self.mode, "translated": False}

    def stats(self) -> dict[str, int]:
        return {}

    def readers(self) -> list[tuple[Any, Callable[[], list[Observation]]]]:
        """Sockets the daemon's selector must watch (a queue-based backend would have one)."""
        return []

    def quiet_source(self) -> Any | None:
        """What the daemon's selector watches for ``quiet_signals`` (None: this backend cannot tell,
        and upper-layer feedback polls every context that sends)."""
        return None

    def quiet_signals(self) -> list[QuietSignal]:
        return []

    def last_rx(self, ulids: UlidPair) -> int | None:
        """The kernel's time of the peer's last packet in on this context (None: not watched)."""
        return None

    def stop(self) -> None:
        pass


@dataclass
class Counters:
    packets: int = 0
    bytes: int = 0


def _pair_key(ulids: UlidPair) -> bytes:
    return ulids[0].packed + ulids[1].packed


# Where the 64-bit counters sit in each map's value: (packets, bytes) offsets; watch_map's out, then in.
COUNTERS = {"out_map": (40, 48), "in_map": (32, 40), "watch_map": (128, 136, 256, 264)}
# struct watch: rx_stamp_ns and signalled_rx_ns, at 128 the packets out's part (counters, last_tx_ns),
# at 256 the packets in's (counters, last_rx_ns)
WATCH_SIGNALLED_RX, WATCH_LAST_RX, WATCH_SIZE = 8, 272, 280
# a new entry's signalled_rx_ns matches no last_rx_ns: its first packet out with nothing heard signals
WATCH_NEW = bytes(WATCH_SIGNALLED_RX) + struct.pack("<Q", 2**64 - 1) + bytes(WATCH_SIZE - WATCH_SIGNALLED_RX - 8)


def _xlate_value(tr: Translation, hop: netops.NextHop, mtu: int) -> bytes:
    """``struct xlate`` of shim_tc.c: locators, peer tag, counters, gateway, device and its MTU."""
    gateway = hop.gateway.packed if hop.gateway else bytes(16)
    return (tr.local_locator.packed + tr.peer_locator.packed + struct.pack("<QQQ", tr.peer_tag, 0, 0)
            + gateway + struct.pack("<II", hop.ifindex, mtu))


@dataclass
class EbpfDataPath(DataPath):
    mode = "ebpf"
    obj: bpfload.BpfObject | None = None
    tc: netops.TcAttachments | None = None
    routes: netops.Routes | None = None
    current: Plan = field(default_factory=Plan)
    hops: dict[UlidPair, netops.NextHop] = field(default_factory=dict)
    seen: dict[tuple[str, bytes], tuple[int, ...]] = field(default_factory=dict)
    totals: dict[UlidPair, dict[str, Counters]] = field(default_factory=dict)
    next_route_check: float = 0.0
    ring: bpfload.RingBuffer | None = None
    counted_translations: int = 0  # what ``translations`` holds

    def start(self) -> None:
        with tempfile.TemporaryDirectory(prefix="shim-bpf-") as workdir:
            self.obj = bpfload.load_object(bpfload.compile_object(workdir))
        quiet = self.obj.maps["quiet_ring"]
        self.ring = bpfload.RingBuffer(quiet.fd, quiet.max_entries)
        netops.flush_translated()  # a killed predecessor's routes
        self.routes = netops.Routes()
        self.tc = netops.TcAttachments()
        for dev in netops.real_devices(()):
            self.tc.attach(dev, "ingress", self.obj.programs["tc/in"], "shim_in")
            self.tc.attach(dev, "egress", self.obj.programs["tc/out"], "shim_out")

    def apply(self, plan: Plan) -> None:
        """A translation's route goes in before its map entry and comes out after it.

        The route's lower MTU must reach TCP before a single packet is translated: a segment
        built for the untranslated path's MTU grows past its device's MTU with the payload
        header, and a router answers Packet Too Big.  The price is a window of a few
        milliseconds in which the context's packets leave by the new pair's device untranslated
        (lost, as on the failed pair, or delivered with the ULIDs).  A socket's first segment
        after the route can still be sized for the old MTU: ``shim_out`` drops it (counted
        ``out_too_big``) instead of sending it 8 octets too big, and TCP sends it again smaller.
        """
        maps = self.obj.maps
        self._count_translations(len(plan.translate.keys() | self.current.translate.keys()))
        for ulids, tr in plan.translate.items():
            if self.current.translate.get(ulids) != tr:
                self._translate(ulids, tr, self.routes.next_hop(tr.local_locator, tr.peer_locator))
        for key, ulids in plan.restore.items():
            if key not in self.current.restore:
                maps["in_map"].update(struct.pack("<Q", key[0]) + key[1].packed + key[2].packed,
                                      ulids[0].packed + ulids[1].packed + bytes(16))
        for ulids in plan.watch - self.current.watch:
            maps["watch_map"].update(_pair_key(ulids), WATCH_NEW)
        for ulids in self.current.translate.keys() - plan.translate.keys():
            self._harvest("out_map", _pair_key(ulids))
            maps["out_map"].delete(_pair_key(ulids))
            self.routes.unroute_translated(*ulids)
            self.hops.pop(ulids, None)
        for key in self.current.restore.keys() - plan.restore.keys():
            maps["in_map"].delete(struct.pack("<Q", key[0]) + key[1].packed + key[2].packed)
        for ulids in self.current.watch - plan.watch:
            maps["watch_map"].delete(_pair_key(ulids))
        self._count_translations(len(plan.translate))
        self.current = plan

    def _count_translations(self, n: int) -> None:
        """``translations``: never below the entries out_map holds (a packet out with 0 skips it)."""
        if n != self.counted_translations:
            self.obj.maps["translations"].update(bytes(4), struct.pack("<I", n))
            self.counted_translations = n

    def _translate(self, ulids: UlidPair, tr: Translation, hop: netops.NextHop) -> None:
        mtu = netops.device_mtu(hop.device)
        self.routes.route_translated(*ulids, hop, mtu - MTU_MARGIN)
        self._harvest("out_map", _pair_key(ulids))
        self.obj.maps["out_map"].update(_pair_key(ulids), _xlate_value(tr, hop, mtu))
        self.hops[ulids] = hop

    def _follow_routes(self) -> None:
        """A pair's next hop moved (a new gateway, another device): move the map entry and the route."""
        for ulids, tr in self.current.translate.items():
            try:
                hop = self.routes.next_hop(tr.local_locator, tr.peer_locator)
            except netops.NetOpsError:
                continue  # no route now: keep the last one (REAP will notice the pair fail)
            if hop != self.hops.get(ulids):
                self._translate(ulids, tr, hop)

    def _harvest(self, name: str, key: bytes) -> None:
        """Read an entry's counters before it is overwritten or deleted (they are cumulative)."""
        self._delta(name, key)
        self.seen.pop((name, key), None)

    def _delta(self, name: str, key: bytes) -> tuple[int, ...]:
        raw = self.obj.maps[name].lookup(key)
        if raw is None:
            return ()
        now = tuple(struct.unpack_from("<Q", raw, offset)[0] for offset in COUNTERS[name])
        before = self.seen.get((name, key), (0,) * len(now))
        self.seen[(name, key)] = now
        return tuple(a - b for a, b in zip(now, before))

    def _count(self, ulids: UlidPair, what: str, packets: int, nbytes: int) -> None:
        c = self.totals.setdefault(ulids, {}).setdefault(what, Counters())
        c.packets += packets
        c.bytes += nbytes

    def poll(self) -> list[Observation]:
        if self.current.translate and time.monotonic() >= self.next_route_check:
            self.next_route_check = time.monotonic() + ROUTE_CHECK_INTERVAL
            self._follow_routes()
        out: list[Observation] = []
        for ulids in self.current.translate:
            d = self._delta("out_map", _pair_key(ulids))
            if d and d[0]:
                self._count(ulids, "translated_out", d[0], d[1])
                out.append(Observation(ulids[0], ulids[1], True))
        for (tag, remote, local), ulids in self.current.restore.items():
            d = self._delta("in_map", struct.pack("<Q", tag) + remote.packed + local.packed)
            if d and d[0]:
                self._count(ulids, "restored_in", d[0], d[1])
                out.append(Observation(local, remote, False))
        for ulids in self.current.watch:
            d = self._delta("watch_map", _pair_key(ulids))
            if d and d[0]:
                self._count(ulids, "ulid_out", d[0], d[1])
                out.append(Observation(ulids[0], ulids[1], True))
            if d and d[2]:
                self._count(ulids, "ulid_in", d[2], d[3])
                out.append(Observation(ulids[0], ulids[1], False))
        return out

    def quiet_source(self) -> Any | None:
        return self.ring

    def quiet_signals(self) -> list[QuietSignal]:
        found = (parse_quiet(r) for r in self.ring.drain())
        return [q for q in found if q is not None and q.ulids in self.current.watch]

    def last_rx(self, ulids: UlidPair) -> int | None:
        raw = self.obj.maps["watch_map"].lookup(_pair_key(ulids)) if ulids in self.current.watch else None
        return struct.unpack_from("<Q", raw, WATCH_LAST_RX)[0] if raw is not None else None

    def describe(self, ulids: UlidPair) -> dict[str, Any]:
        tr: Translation | None = self.current.translate.get(ulids)
        counters = {k: vars(v).copy() for k, v in self.totals.get(ulids, {}).items()}
        return {"mode": self.mode, "translated": tr is not None,
                "locators": [str(tr.local_locator), str(tr.peer_locator)] if tr else [str(ulids[0]), str(ulids[1])],
                "counters": counters}

    def stats(self) -> dict[str, int]:
        stats = self.obj.maps["stats"]  # per CPU: summed
        return {name: sum(struct.unpack("<Q", v)[0] for v in stats.values(struct.pack("<I", i)))
                for i, name in enumerate(STAT_NAMES)}

    def stop(self) -> None:
        if self.routes is not None:
            for ulids in self.current.translate:
                self.routes.unroute_translated(*ulids)
            self.routes.close()
        if self.tc is not None:
            self.tc.detach_all()
        if self.ring is not None:
            self.ring.close()
        if self.obj is not None:
            self.obj.close()


def make_datapath(mode: str, device: str | None = None) -> DataPath:
    """``none`` or ``ebpf`` (the NFQUEUE fallback is not written yet: see the README).

    ``device`` named the steering veth of the earlier design; translation now happens on the
    real devices, so it is accepted for old configurations and unused.
    """
    if mode == "none":
        return DataPath()
    if mode == "ebpf":
        return EbpfDataPath()
    raise ValueError(f"unknown data path {mode!r} (none, ebpf)")
