"""The packet observer (``--observe``): an AF_PACKET socket that tells the engine who sends to whom.

The context policy needs to see a flow start; REAP needs to know that a context sends and
receives.  With a data path (``--datapath ebpf``) the second comes from its per-context
counters, so the observer's socket filter (``sockfilter``) drops every packet between an
established context's ULIDs in the kernel: a bulk transfer then costs the daemon its counter
polls, not a Python ``recvfrom`` per segment and ACK.  Without a data path (``none``) the
observer is REAP's only input and sees established contexts' packets too.

``Observer.refilter`` is called after anything that may change the contexts; it re-attaches
the filter only when the exclusions changed.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Callable

from .sockfilter import Exclusions, attach, program

Address = ipaddress.IPv6Address
ETH_P_IPV6 = 0x86DD
PACKET_OUTGOING = 4
ICMP6_INFO_MIN = 128  # below: error messages (unreachable, too big, ...), a router's or our own; not a flow
ND_TYPES = range(133, 138)
Sighting = Callable[[Address, Address, bool, bool], None]  # local, peer, outgoing, exact


def observable(data: bytes) -> bool:
    """Is this IPv6 packet (from the AF_PACKET sniffer) a data packet of a flow?

    Not: shim packets (protocol 140, the raw socket's), ICMPv6 errors (a router's unreachable is
    a failure signal for the ICMP socket, not a flow to open a context with), Neighbour Discovery.
    """
    if len(data) < 40 or data[6] == 140:
        return False
    return not (data[6] == 58 and len(data) > 40 and (data[40] < ICMP6_INFO_MIN or data[40] in ND_TYPES))


@dataclass
class ObserverStats:
    packets: int = 0  # delivered to the daemon by the kernel
    filter_updates: int = 0
    excluded_pairs: int = 0
    excluded_peers: int = 0
    instructions: int = 0


class Observer:
    """The sniffer socket, its filter, and the translation of a packet into an engine sighting."""

    def __init__(self, owns: Callable[[Address], bool], restored: bool) -> None:
        """``owns``: is this one of our addresses; ``restored``: a data path restores incoming ULIDs
        before we see them (so an incoming packet proves no locator pair)."""
        self.owns = owns
        self.restored = restored
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IPV6))
        self.stats = ObserverStats()
        self.current: Exclusions | None = None
        self.refilter(Exclusions())

    def refilter(self, exclusions: Exclusions) -> None:
        if exclusions == self.current:
            return
        insns = program(exclusions)
        attach(self.sock, insns)
        self.current = exclusions
        self.stats.filter_updates += 1
        self.stats.excluded_pairs, self.stats.excluded_peers = len(exclusions.pairs), len(exclusions.peers)
        self.stats.instructions = len(insns)

    def read(self, sighting: Sighting) -> None:
        """One packet from the socket; ``sighting`` is called if it is a flow's packet of ours."""
        data, addr = self.sock.recvfrom(256)
        self.stats.packets += 1
        if not observable(data):
            return
        src, dst = Address(data[8:24]), Address(data[24:40])
        outgoing = addr[2] == PACKET_OUTGOING
        local, peer = (src, dst) if outgoing else (dst, src)
        if self.owns(local) and not peer.is_multicast and not peer.is_link_local:
            # with a data path, an incoming packet is seen after shim_in restored its ULIDs: which
            # locator pair it came on is the data path's counters' business, not ours
            sighting(local, peer, outgoing, outgoing or not self.restored)

    def close(self) -> None:
        self.sock.close()
