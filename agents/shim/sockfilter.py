"""The observer's classic BPF socket filter: the kernel hands the daemon only packets it needs.

The AF_PACKET observer (``--observe``) exists for flows *without* a usable context: the context
policy must see a flow start.  Everything else would cost one Python ``recvfrom`` per packet
and ACK of a bulk transfer (measured: 1.4-3.5 CPU-s per 10 s transfer on each end, on the
2 cores the transfer itself needs).  This filter, attached with ``SO_ATTACH_FILTER``, drops in
the kernel, before the packet is queued to the socket:

- what ``daemon.observable`` ignores anyway: protocol 140 (the raw socket's), ICMPv6 errors
  and Neighbour Discovery, multicast destinations and link-local addresses;
- ``Exclusions.pairs``: packets between a context's ULIDs, both ways, whose REAP inputs come
  from the data path's counters instead (or that the engine ignores: a context being set up);
- ``Exclusions.peers``: packets to or from a peer remembered as having no shim (the engine
  refuses to open a context with it until the hold-down ends).

Whatever the filter passes is what the daemon handled before, so the filter only saves work:
its rules never change what the engine decides.  It is rebuilt and re-attached (the kernel
swaps it atomically) when the exclusions change.  Offsets are from the IPv6 header: on an
``AF_PACKET``/``SOCK_DGRAM`` socket the kernel runs the filter with the link header pulled,
for incoming and outgoing packets alike.
"""

from __future__ import annotations

import ctypes
import ipaddress
import socket
import struct
from dataclasses import dataclass, field

Address = ipaddress.IPv6Address
SO_ATTACH_FILTER = 26  # <asm-generic/socket.h>
BPF_MAXINSNS = 4096
SNAPLEN = 128  # the observer reads the IPv6 header and an ICMPv6 type

# classic BPF opcodes (<linux/filter.h>)
LD_B_ABS, LD_W_ABS, ALU_AND_K = 0x30, 0x20, 0x54
JEQ_K, JGE_K, JGT_K, RET_K = 0x15, 0x35, 0x25, 0x06
SRC, DST = 8, 24  # offsets of the addresses in the IPv6 header
NEXT_HEADER, ICMP_TYPE = 6, 40
SHIM6, ICMPV6 = 140, 58

Insn = tuple[int, int, int, int]  # code, jt, jf, k


@dataclass(frozen=True)
class Exclusions:
    """What the observer need not see: ULID pairs (local, peer) both ways, peers (any address of ours)."""

    pairs: frozenset[tuple[Address, Address]] = field(default_factory=frozenset)
    peers: frozenset[Address] = field(default_factory=frozenset)


def _words(addr: Address) -> tuple[int, int, int, int]:
    return struct.unpack("!4I", addr.packed)


def _header() -> list[Insn]:
    """Drop what the observer never wants, whatever the contexts."""
    return [
        (LD_B_ABS, 0, 0, NEXT_HEADER),
        (JEQ_K, 0, 1, SHIM6), (RET_K, 0, 0, 0),
        (JEQ_K, 0, 6, ICMPV6),  # not ICMPv6: on to the addresses
        (LD_B_ABS, 0, 0, ICMP_TYPE),
        (JGE_K, 1, 0, 128), (RET_K, 0, 0, 0),  # an error message
        (JGE_K, 0, 2, 133), (JGT_K, 1, 0, 137), (RET_K, 0, 0, 0),  # Neighbour Discovery (133-137)
        (LD_B_ABS, 0, 0, DST), (JEQ_K, 0, 1, 0xFF), (RET_K, 0, 0, 0),  # multicast destination
        (LD_W_ABS, 0, 0, SRC), (ALU_AND_K, 0, 0, 0xFFC00000), (JEQ_K, 0, 1, 0xFE800000), (RET_K, 0, 0, 0),
        (LD_W_ABS, 0, 0, DST), (ALU_AND_K, 0, 0, 0xFFC00000), (JEQ_K, 0, 1, 0xFE800000), (RET_K, 0, 0, 0),
    ]


def _match_drop(fields: list[tuple[int, Address]]) -> list[Insn]:
    """Drop when every (offset, address) matches; on the first mismatch skip past the block."""
    checks = [(offset + 4 * i, word) for offset, addr in fields for i, word in enumerate(_words(addr))]
    out: list[Insn] = []
    for n, (offset, word) in enumerate(checks):
        out += [(LD_W_ABS, 0, 0, offset), (JEQ_K, 0, 2 * (len(checks) - n) - 1, word)]
    return out + [(RET_K, 0, 0, 0)]


PAIR_BLOCK = 2 * len(_match_drop([(SRC, Address(0)), (DST, Address(0))]))  # one pair, both directions
PEER_BLOCK = 2 * len(_match_drop([(SRC, Address(0))]))  # one peer, as source or destination


def program(exclusions: Exclusions) -> list[Insn]:
    """The filter for these exclusions (sorted, so equal exclusions give an equal program).

    Exclusions that would not fit in ``BPF_MAXINSNS`` are left out: their packets are passed and
    the daemon handles them as it would without a filter.
    """
    insns = _header()
    budget = BPF_MAXINSNS - len(insns) - 1
    for peer in sorted(exclusions.peers):
        if budget < PEER_BLOCK:
            break
        insns += _match_drop([(SRC, peer)]) + _match_drop([(DST, peer)])
        budget -= PEER_BLOCK
    for local, peer in sorted(exclusions.pairs):
        if budget < PAIR_BLOCK:
            break
        insns += _match_drop([(SRC, local), (DST, peer)]) + _match_drop([(SRC, peer), (DST, local)])
        budget -= PAIR_BLOCK
    return insns + [(RET_K, 0, 0, SNAPLEN)]


def encode(insns: list[Insn]) -> bytes:
    """``struct sock_filter`` array, as the kernel reads it."""
    return b"".join(struct.pack("=HBBI", *insn) for insn in insns)


def attach(sock: socket.socket, insns: list[Insn]) -> None:
    """Attach (or atomically replace) the socket's filter; the kernel copies the program."""
    code = ctypes.create_string_buffer(encode(insns))
    fprog = struct.pack("HL", len(insns), ctypes.addressof(code))  # struct sock_fprog {len; *filter}
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
