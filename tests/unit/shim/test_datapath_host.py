"""The data path's host side without root: the map value matches the C struct, and the next hop
of a locator pair is read from the kernel's route (an rtnetlink route get) as the route needs it."""

import gc
import ipaddress
import shutil
import struct
import tracemalloc

import pytest
from pyroute2.netlink.exceptions import NetlinkError

from agents.shim import bpfload, datapath, netops
from agents.shim.datapath import COUNTERS, _xlate_value
from agents.shim.plan import Plan, Translation

A = ipaddress.IPv6Address


def map_sizes(path):
    """name -> (key size, value size) from the object's "maps" section, as the loader reads it."""
    sections = bpfload._sections(path.read_bytes())
    maps = next(i for i, s in enumerate(sections) if s["name"] == "maps")
    symtab = next(s for s in sections if s["type"] == bpfload.SHT_SYMTAB)
    names = sections[symtab["link"]]
    out = {}
    for i in range(symtab["size"] // 24):
        name, _info, _other, shndx, value, _size = struct.unpack_from("<IBBHQQ", symtab["data"], i * 24)
        if shndx == maps:
            _type, ksize, vsize, _n = struct.unpack_from("<IIII", sections[maps]["data"], value)
            out[bpfload._cstr(path.read_bytes(), names["off"] + name)] = (ksize, vsize)
    return out


@pytest.mark.skipif(not shutil.which("clang"), reason="needs clang")
def test_translation_value_matches_struct_xlate(tmp_path):
    sizes = map_sizes(bpfload.compile_object(str(tmp_path)))
    hop = netops.NextHop("eth2", 7, A("fe80::1"))
    value = _xlate_value(Translation(A("2001:db8:a2::1"), A("2001:db8:b2::1"), 0x1234), hop, 1500)
    assert len(value) == sizes["out_map"][1]
    packets, nbytes = COUNTERS["out_map"]
    assert struct.unpack_from("<QQ", value, packets) == (0, 0) and nbytes == packets + 8  # counters start at zero
    end = nbytes + 8
    assert value[end:end + 16] == A("fe80::1").packed  # then the gateway, the device
    assert struct.unpack_from("<II", value, end + 16) == (7, 1500)  # and the device's MTU
    on_link = _xlate_value(Translation(A("2001:db8:a2::1"), A("2001:db8:b2::1"), 1), netops.NextHop("eth1", 3, None),
                           9000)
    assert on_link[end:end + 16] == bytes(16)


class FakeRoute(dict):
    """What pyroute2 answers to a route get: header fields by key, attributes by get_attr."""

    def __init__(self, rtype=1, **attrs):
        super().__init__(type=rtype, dst_len=attrs.pop("dst_len", 128), src_len=attrs.pop("src_len", 0))
        self.attrs = attrs

    def get_attr(self, name):
        return self.attrs.get(name)


class FakeIpr:
    def __init__(self, answer):
        self.answer, self.calls = answer, []

    def route(self, command, **kw):
        self.calls.append((command, kw))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.mark.parametrize("answer, expected", [
    ([FakeRoute(RTA_OIF=1, RTA_GATEWAY="2001:db8:a2:1::1")], ("lo", A("2001:db8:a2:1::1"))),
    ([FakeRoute(RTA_OIF=1)], ("lo", None)),
])
def test_next_hop_is_the_pairs_route(answer, expected):
    ipr = FakeIpr(answer)
    hop = netops.Routes(ipr).next_hop(A("2001:db8:a2:1::5"), A("2001:db8:b2:1::9"))
    assert (hop.device, hop.gateway, hop.ifindex) == (*expected, 1)
    assert ipr.calls == [("get", {"dst": "2001:db8:b2:1::9", "src": "2001:db8:a2:1::5"})]


@pytest.mark.parametrize("answer", [[], [FakeRoute(7, RTA_OIF=1)], NetlinkError(101, "Network is unreachable")])
def test_next_hop_without_a_usable_route_is_an_error(answer):
    with pytest.raises(netops.NetOpsError):
        netops.Routes(FakeIpr(answer)).next_hop(A("2001:db8:a2:1::5"), A("2001:db8:b2:1::9"))


def test_switch_invalidates_the_route_sockets_used():
    """The route in use (a source-specific default) gets a placeholder added and deleted in its node."""
    ipr = FakeIpr([FakeRoute(dst_len=0, src_len=64, RTA_SRC="2001:db8:a1:1::")])
    hop = netops.NextHop("lo", 1, A("2001:db8:a2:1::1"))
    netops.Routes(ipr).route_translated(A("2001:db8:a1:1::5"), A("2001:db8:b1:1::9"), hop, 1460)
    commands = [(c, kw.get("dst"), kw.get("dst_len"), kw.get("src_len"), kw.get("type")) for c, kw in ipr.calls]
    assert commands == [("get", "2001:db8:b1:1::9", None, None, None),
                        ("replace", "2001:db8:b1:1::9", 128, 128, None),
                        ("add", "::", 0, 64, netops.RTN_UNREACHABLE), ("del", "::", 0, 64, netops.RTN_UNREACHABLE)]
    assert ipr.calls[1][1]["metrics"] == {"mtu": 1460, "advmss": 1400} and ipr.calls[1][1]["gateway"] == "2001:db8:a2:1::1"
    assert ipr.calls[0][1]["flags"] == netops.RTM_F_FIB_MATCH and ipr.calls[2][1]["src"] == "2001:db8:a1:1::"


def test_a_long_lived_route_socket_does_not_grow():
    """pyroute2 keeps each request's acknowledgement where nothing reads it; the daemon looks a translated
    pair's route up once a second for as long as it runs.  Real lookups (``ip route get fibmatch ::1``)
    through one Routes: once warm (3,000 lookups, several sockets), 3,000 more leave nothing behind
    (one socket for all of them kept ~75 KiB per 1,000)."""
    routes = netops.Routes()
    tracemalloc.start()
    for _ in range(3000):
        routes.fib_match(A("::1"), A("::1"))
    gc.collect()
    warm = tracemalloc.take_snapshot()
    for _ in range(3000):
        assert routes.fib_match(A("::1"), A("::1")) is not None
    gc.collect()
    grown = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(warm, "filename"))
    tracemalloc.stop()
    routes.close()
    assert grown < 32 * 1024, f"{grown} bytes kept by 3,000 more route lookups"


def test_a_per_cpu_map_reads_one_padded_value_per_possible_cpu(monkeypatch):
    assert bpfload.possible_cpus("0-3,6\n") == 7 and bpfload.possible_cpus("0\n") == 1
    monkeypatch.setattr(bpfload, "possible_cpus", lambda spec=None: 3)
    stats = bpfload.BpfMap("stats", -1, 4, 4, bpfload.BPF_MAP_TYPE_PERCPU_ARRAY, 9)
    seen = []

    def fake_elem(cmd, key, value, flags=0):
        seen.append(len(value))
        value[:] = b"".join(struct.pack("<I", n) + b"pad!" for n in (1, 2, 3))
        return 0

    monkeypatch.setattr(stats, "_elem", fake_elem)
    assert [struct.unpack("<I", v)[0] for v in stats.values(bytes(4))] == [1, 2, 3]
    assert seen == [3 * 8]  # 4-octet values padded to 8, for each CPU


class RecordingMap:
    """A map that keeps what the data path writes (no kernel)."""

    def __init__(self, log, name):
        self.log, self.name, self.entries = log, name, {}

    def update(self, key, value):
        self.entries[key] = value
        self.log.append((self.name, "update", key))

    def delete(self, key):
        self.entries.pop(key, None)
        self.log.append((self.name, "delete", key))

    def lookup(self, key):
        return self.entries.get(key)


class FakeRoutes:
    def next_hop(self, local, peer):
        return netops.NextHop("eth2", 3, A("fe80::2"))

    def route_translated(self, *args):
        pass

    def unroute_translated(self, *args):
        pass


def test_the_count_of_translations_never_falls_below_the_entries_out_map_holds(monkeypatch):
    log = []
    path = datapath.EbpfDataPath()
    path.obj = bpfload.BpfObject()
    path.obj.maps = {name: RecordingMap(log, name) for name in ("out_map", "in_map", "watch_map", "translations")}
    path.routes = FakeRoutes()
    monkeypatch.setattr(netops, "device_mtu", lambda dev: 1500)
    ulids = (A("2001:db8:a1::1"), A("2001:db8:b1::1"))
    other = (A("2001:db8:a1::1"), A("2001:db8:b1::2"))
    tr = Translation(A("2001:db8:a2::1"), A("2001:db8:b2::1"), 7)
    count = lambda: struct.unpack("<I", path.obj.maps["translations"].entries.get(bytes(4), bytes(4)))[0]  # noqa: E731

    path.apply(Plan({ulids: tr}, {}, frozenset({ulids})))
    writes = [(name, op) for name, op, _ in log if name in ("out_map", "translations")]
    assert writes == [("translations", "update"), ("out_map", "update")] and count() == 1  # counted first
    log.clear()
    path.apply(Plan({other: tr}, {}, frozenset({other})))  # one for another: 2 while both may be in
    writes = [(name, op) for name, op, _ in log if name in ("out_map", "translations")]
    assert writes == [("translations", "update"), ("out_map", "update"), ("out_map", "delete"),
                      ("translations", "update")] and count() == 1
    log.clear()
    path.apply(Plan({}, {}, frozenset()))
    writes = [(name, op) for name, op, _ in log if name in ("out_map", "translations")]
    assert writes == [("out_map", "delete"), ("translations", "update")] and count() == 0  # counted last
