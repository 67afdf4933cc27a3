"""Upper-layer feedback: TCP tells when its packets stop getting through (thesis 6.4.3.3.1).

The kernel knows first.  Two of TCP's timers say "my packets stop getting through":

- the retransmission timeout: the connection is in ``TCP_CA_Loss`` and ``backoff`` counts
  the timeouts (``RTO``);
- the tail-loss probe (RFC 8985): no ACK for about two round trips while data is
  outstanding, so TCP retransmits its last segment; ``total_retrans`` grows while the
  connection is neither in Recovery nor in Loss (``TLP``).

The tail-loss probe matters: a sender that keeps writing (a stream with a large congestion
window) goes on sending new data into a dead path and the first RTO comes late, measured at
1 s after a silent cut with a 30 ms ``rto_min``; its TLP fired at 40 ms.  A fast retransmit
(``TCP_CA_Recovery``: duplicate ACKs or SACKs arrived, so the path works) is not reported.

The daemon asks the kernel for the TCP sockets of its own network namespace (sock_diag,
``NETLINK_SOCK_DIAG``: a dump is per namespace, so no other host's sockets are seen) every
``ULP_POLL_INTERVAL`` while contexts exist, and reports each *new* timeout of an established
connection between the ULIDs of a context.  The engine treats a report as a suspicion on the
pair in use (``reap``), which a REAP probe confirms or clears.

Why sock_diag and not a ``tp_btf/tcp_retransmit_skb`` program: the tracepoint fires in every
namespace of the machine and reading the socket's namespace and addresses needs the kernel's
structure offsets (BTF relocation, which our libbpf-free loader does not do); a 20 ms poll
is well inside the shortest RTO it has to notice.

``parse_dump`` and ``LossTracker`` are pure (unit-tested on bytes); ``SockDiag`` does the I/O.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from dataclasses import dataclass, field
from typing import Iterable

Address = ipaddress.IPv6Address
NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
INET_DIAG_INFO = 2
TCP_ESTABLISHED = 1
TCP_CA_RECOVERY, TCP_CA_LOSS = 3, 4
RTO, TLP = "tcp-rto", "tcp-tlp"
ULP_POLL_INTERVAL = 0.02
_NLMSG = struct.Struct("=IHHII")
_DIAG_MSG_LEN = 72  # struct inet_diag_msg
RTO_MIN_SYSCTL = "/proc/sys/net/ipv4/tcp_rto_min_us"


@dataclass(frozen=True)
class TcpState:
    """What sock_diag says about one TCP socket (``tcp_info`` fields we use)."""

    cookie: int
    local: Address
    peer: Address
    ca_state: int
    backoff: int
    total_retrans: int = 0
    rto_us: int = 0


def dump_request(seq: int = 1) -> bytes:
    """INET_DIAG dump of established IPv6 TCP sockets with their tcp_info."""
    req = struct.pack("=BBBBI", socket.AF_INET6, socket.IPPROTO_TCP, 1 << (INET_DIAG_INFO - 1), 0,
                      1 << TCP_ESTABLISHED) + bytes(48)
    return _NLMSG.pack(_NLMSG.size + len(req), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + req


def parse_dump(data: bytes) -> tuple[list[TcpState], bool]:
    """(sockets, done) from one netlink read; malformed messages end the parse."""
    out: list[TcpState] = []
    offset = 0
    while offset + _NLMSG.size <= len(data):
        length, mtype, _flags, _seq, _pid = _NLMSG.unpack_from(data, offset)
        if length < _NLMSG.size or offset + length > len(data):
            break
        body = data[offset + _NLMSG.size : offset + length]
        offset += (length + 3) & ~3
        if mtype in (NLMSG_DONE, NLMSG_ERROR):
            return out, True
        if mtype != SOCK_DIAG_BY_FAMILY or len(body) < _DIAG_MSG_LEN:
            continue
        state = _socket_state(body)
        if state is not None:
            out.append(state)
    return out, False


def _socket_state(body: bytes) -> TcpState | None:
    src, dst = Address(body[8:24]), Address(body[24:40])
    cookie = struct.unpack_from("=Q", body, 44)[0]
    at = _DIAG_MSG_LEN
    while at + 4 <= len(body):
        rlen, rtype = struct.unpack_from("=HH", body, at)
        if rlen < 4:
            return None
        if rtype == INET_DIAG_INFO and rlen >= 4 + 104:
            info = body[at + 4 : at + rlen]
            rto, = struct.unpack_from("=I", info, 8)
            total, = struct.unpack_from("=I", info, 100)
            return TcpState(cookie, src, dst, info[1], info[4], total, rto)
        at += (rlen + 3) & ~3
    return None


@dataclass(frozen=True)
class TcpTimeout:
    """One new timeout of a watched connection: ``kind`` is ``RTO`` or ``TLP``."""

    kind: str
    state: TcpState

    @property
    def local(self) -> Address:
        return self.state.local

    @property
    def peer(self) -> Address:
        return self.state.peer


@dataclass
class LossTracker:
    """Turns successive dumps into events: an RTO (entered TCP_CA_Loss, or timed out again) or a TLP."""

    last: dict[int, TcpState] = field(default_factory=dict)

    def update(self, sockets: Iterable[TcpState], watched: set[tuple[Address, Address]]) -> list[TcpTimeout]:
        current = {s.cookie: s for s in sockets if (s.local, s.peer) in watched}
        fresh = []
        for cookie, now in current.items():
            before = self.last.get(cookie)
            if now.ca_state == TCP_CA_LOSS:
                if before is None or before.ca_state != TCP_CA_LOSS or now.backoff > before.backoff:
                    fresh.append(TcpTimeout(RTO, now))
            elif before is not None and now.ca_state < TCP_CA_RECOVERY and before.ca_state < TCP_CA_RECOVERY \
                    and now.total_retrans > before.total_retrans:
                fresh.append(TcpTimeout(TLP, now))
        self.last = current
        return fresh


class SockDiag:
    """The netlink socket; ``poll(watched)`` returns new retransmission timeouts."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG)
        self.tracker = LossTracker()
        self.seq = 0

    def poll(self, watched: set[tuple[Address, Address]]) -> list[TcpTimeout]:
        if not watched:
            self.tracker.last.clear()
            return []
        self.seq += 1
        self.sock.send(dump_request(self.seq))
        sockets: list[TcpState] = []
        done = False
        while not done:
            chunk = self.sock.recv(65536)
            found, done = parse_dump(chunk)
            sockets += found
            done = done or not chunk
        return self.tracker.update(sockets, watched)

    def close(self) -> None:
        self.sock.close()


@dataclass
class RtoMin:
    """Set the namespace's TCP minimum RTO for the daemon's lifetime, then put it back."""

    seconds: float
    previous: str | None = None

    def apply(self) -> None:
        if self.seconds <= 0 or not os.path.exists(RTO_MIN_SYSCTL):
            return
        with open(RTO_MIN_SYSCTL) as f:
            self.previous = f.read().strip()
        with open(RTO_MIN_SYSCTL, "w") as f:
            f.write(str(int(self.seconds * 1e6)))

    def restore(self) -> None:
        if self.previous is not None:
            with open(RTO_MIN_SYSCTL, "w") as f:
                f.write(self.previous)
            self.previous = None
