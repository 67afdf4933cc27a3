"""The data path's host side without root: the map value matches the C struct, and the next hop
of a locator pair is read from the kernel's route (``ip -j route get``) as the route needs it."""

import ipaddress
import shutil
import struct

import pytest

from agents.shim import bpfload, netops
from agents.shim.datapath import COUNTERS, _xlate_value
from agents.shim.plan import Translation

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
    offset, n = COUNTERS["out_map"]
    assert struct.unpack_from(f"<{n}Q", value, offset) == (0, 0)  # counters start at zero
    assert value[offset + 8 * n:offset + 8 * n + 16] == A("fe80::1").packed  # then the gateway, the device
    assert struct.unpack_from("<II", value, offset + 8 * n + 16) == (7, 1500)  # and the device's MTU
    on_link = _xlate_value(Translation(A("2001:db8:a2::1"), A("2001:db8:b2::1"), 1), netops.NextHop("eth1", 3, None),
                           9000)
    assert on_link[offset + 8 * n:offset + 8 * n + 16] == bytes(16)


@pytest.mark.parametrize("answer, expected", [
    ('[{"dst":"2001:db8:b2:1::9","from":"2001:db8:a2:1::5","gateway":"2001:db8:a2:1::1","dev":"eth2"}]',
     ("eth2", A("2001:db8:a2:1::1"))),
    ('[{"type":"unicast","dst":"2001:db8:a2:1::9","dev":"eth2"}]', ("eth2", None)),
])
def test_next_hop_is_the_pairs_route(monkeypatch, answer, expected):
    monkeypatch.setattr(netops, "run", lambda *args, check=True: answer)
    monkeypatch.setattr(netops, "device_index", lambda name: 4)
    hop = netops.next_hop(A("2001:db8:a2:1::5"), A("2001:db8:b2:1::9"))
    assert (hop.device, hop.gateway, hop.ifindex) == (*expected, 4)


@pytest.mark.parametrize("answer", ["[]", '[{"type":"unreachable","dst":"2001:db8:b2:1::9","dev":"lo"}]', "not json"])
def test_next_hop_without_a_usable_route_is_an_error(monkeypatch, answer):
    monkeypatch.setattr(netops, "run", lambda *args, check=True: answer)
    with pytest.raises(netops.NetOpsError):
        netops.next_hop(A("2001:db8:a2:1::5"), A("2001:db8:b2:1::9"))
