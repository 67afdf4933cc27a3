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

A timeout is reported only once the connection also *hears nothing* after it: REAP's own rule
(RFC 5534 Send Timeout: sending without receiving), per connection.  Under random loss on a
working path TCP times out often (measured at 5 % loss with RFC timers: ~150 timeouts a minute,
whose ACK gaps before them were 20-240 ms, so the gap alone tells nothing), but the
retransmission's ACK comes back within a round trip; after a real failure nothing does.  So a
new timeout is *pending* until either an ACK arrives after it was seen (``tcpi_last_ack_recv``,
the time since the connection last received an ACK, dupACKs included: dropped, counted as
answered) or ``answer_wait`` passed without one (twice the smoothed RTT, at least
``ULP_ANSWER_WAIT``: about one poll): reported.  That is what a silent failure costs more: one
poll (20 ms) after its first timeout.

When to look: with the eBPF data path the kernel tells (``datapath.quiet_signals``): a context
that sends and has heard nothing from its peer for 10 ms is *quiet*, and only quiet contexts (and
connections with a timeout pending) are looked at every ``ULP_POLL_INTERVAL``; the spell ends
when the peer is heard again (``QuietPairs``).  The sockets of every other active context are
read once every ``ULP_BASELINE_INTERVAL``, only to record their state: the baseline a tail-loss
probe is told by (its ``total_retrans`` grew).  Under a flow that works the daemon then wakes
about once a second for TCP instead of 50 times (measured: 50 sock_diag lookups a second took
most of the daemon's 1-3 CPU-s a minute under an iperf3 flow).  Without a data path that can tell
(``--datapath none``) every active context is looked at every poll, as before.

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
from typing import Callable, Iterable

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
ULP_BASELINE_INTERVAL = 1.0  # the sockets of contexts that are not quiet are read this often (s)
ULP_ACTIVE_WINDOW = 2.0  # a context is watched while it sent data within this window (s): > the slow poll
ULP_DISCOVER_INTERVAL = 1.0  # a full dump finds the watched pairs' new connections this often (s)
# ... and this often when the data path tells quiet spells: each spell's start dumps then (at most
# once per ULP_DISCOVER_INTERVAL), so a connection opened since is looked at when it may have failed
ULP_DISCOVER_QUIET_INTERVAL = 10.0
ULP_ANSWER_WAIT = 0.015  # a timeout counts once its connection heard no ACK this long after it (or 2 SRTT)
ACK_CLOCK_SLACK = 0.006  # tcpi_last_ack_recv is in jiffies (4 ms at HZ 250), rounded to ms
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
    last_ack_recv_ms: int = 0  # how long ago the connection last received an ACK
    rtt_us: int = 0  # smoothed round-trip time
    sockid: bytes = b""  # struct inet_diag_sockid: what an exact request for this socket names

    def answer_wait(self) -> float:
        """How long a timeout of this connection waits for an ACK before it is a failure signal (s)."""
        return max(ULP_ANSWER_WAIT, 2 * self.rtt_us / 1e6)


def dump_request(seq: int = 1, sockid: bytes | None = None) -> bytes:
    """INET_DIAG request for established IPv6 TCP sockets with their tcp_info: a dump of all of them,
    or, given a ``sockid`` (``TcpState.sockid``: ports, addresses, interface, cookie), that one socket."""
    req = struct.pack("=BBBBI", socket.AF_INET6, socket.IPPROTO_TCP, 1 << (INET_DIAG_INFO - 1), 0,
                      1 << TCP_ESTABLISHED) + (sockid or bytes(48))
    flags = NLM_F_REQUEST if sockid else NLM_F_REQUEST | NLM_F_DUMP
    return _NLMSG.pack(_NLMSG.size + len(req), SOCK_DIAG_BY_FAMILY, flags, seq, 0) + req


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
    if body[1] != TCP_ESTABLISHED:  # an exact request answers whatever state the socket is in
        return None
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
            last_ack, = struct.unpack_from("=I", info, 56)
            rtt, = struct.unpack_from("=I", info, 68)
            total, = struct.unpack_from("=I", info, 100)
            return TcpState(cookie, src, dst, info[1], info[4], total, rto, last_ack, rtt, body[4:52])
        at += (rlen + 3) & ~3
    return None


@dataclass(frozen=True)
class TcpTimeout:
    """A timeout of a watched connection: ``kind`` is ``RTO`` or ``TLP``; ``answered``: an ACK came
    back after it before the connection had been quiet for long, so it is no failure signal."""

    kind: str
    state: TcpState
    answered: bool = False

    @property
    def local(self) -> Address:
        return self.state.local

    @property
    def peer(self) -> Address:
        return self.state.peer


def _new_timeout(before: TcpState | None, now: TcpState) -> str | None:
    """RTO: entered TCP_CA_Loss, or timed out again; TLP: retransmitted outside Recovery and Loss."""
    if now.ca_state == TCP_CA_LOSS:
        if before is None or before.ca_state != TCP_CA_LOSS or now.backoff > before.backoff:
            return RTO
    elif before is not None and now.ca_state < TCP_CA_RECOVERY and before.ca_state < TCP_CA_RECOVERY \
            and now.total_retrans > before.total_retrans:
        return TLP
    return None


@dataclass
class LossTracker:
    """Turns successive dumps (taken at ``now``, seconds) into timeouts that count: a new timeout waits
    until the connection either heard an ACK after it (answered) or heard none for ``answer_wait``."""

    last: dict[int, TcpState] = field(default_factory=dict)
    pending: dict[int, tuple[str, float]] = field(default_factory=dict)  # cookie -> (kind, first seen)

    def update(self, sockets: Iterable[TcpState], watched: set[tuple[Address, Address]],
               now: float, detect: set[tuple[Address, Address]] | None = None) -> list[TcpTimeout]:
        """``detect``: the pairs whose connections are checked for new timeouts (None: every watched
        pair); the others' states are only recorded, as the baseline a later check compares with."""
        current = {s.cookie: s for s in sockets if (s.local, s.peer) in watched}
        for cookie, state in current.items():
            if detect is not None and (state.local, state.peer) not in detect and cookie not in self.pending:
                continue
            kind = _new_timeout(self.last.get(cookie), state)
            if kind is not None:
                earlier = self.pending.get(cookie)
                if earlier is not None:  # still waiting on an earlier one: keep its time, an RTO wins
                    kind, seen = (RTO if RTO in (kind, earlier[0]) else kind), earlier[1]
                else:
                    seen = now
                self.pending[cookie] = (kind, seen)
        out = []
        for cookie, (kind, seen) in list(self.pending.items()):
            state = current.get(cookie)
            if state is None:  # closed, or no longer a context's
                del self.pending[cookie]
                continue
            quiet = state.last_ack_recv_ms / 1000
            if now - quiet > seen + ACK_CLOCK_SLACK:  # an ACK came after the timeout was seen
                out.append(TcpTimeout(kind, state, answered=True))
                del self.pending[cookie]
            elif now - seen >= state.answer_wait():
                out.append(TcpTimeout(kind, state))
                del self.pending[cookie]
        self.last = current
        return out

    def pending_pairs(self) -> set[tuple[Address, Address]]:
        """The (local, peer) of every connection whose timeout waits to be answered or reported."""
        return {(self.last[c].local, self.last[c].peer) for c in self.pending if c in self.last}


@dataclass
class QuietPairs:
    """ULID pairs in a quiet spell: the data path said the context sends and hears nothing (pure).

    A spell starts with a signal, which carries the kernel's time of the peer's last packet in,
    and ends once that time moved on (the peer was heard again) or the data path no longer
    watches the pair.  The kernel signals once per spell, so a spell is never dropped before that.
    """

    spells: dict[tuple[Address, Address], int] = field(default_factory=dict)

    def signal(self, pair: tuple[Address, Address], last_rx: int) -> bool:
        """Record a signal; True if it starts a spell (not one the pair is in already)."""
        new = self.spells.get(pair) != last_rx
        self.spells[pair] = last_rx
        return new

    def settle(self, last_rx: Callable[[tuple[Address, Address]], int | None],
               keep: set[tuple[Address, Address]] = frozenset()) -> None:
        """End the spells of pairs heard from since their signal (not those in ``keep``)."""
        for pair, stamp in list(self.spells.items()):
            if pair not in keep and last_rx(pair) != stamp:
                del self.spells[pair]

    def pairs(self) -> set[tuple[Address, Address]]:
        return set(self.spells)


class SockDiag:
    """The netlink socket; ``poll(watched, now)`` returns the timeouts that count, and those answered.

    A dump walks every bucket of the kernel's TCP established hash, which is one table for the whole
    machine (``tcp_child_ehash_entries`` 0): measured 0.5 ms of CPU per dump, whatever the namespace
    holds, i.e. 1.5 CPU-s a minute at one dump per 20 ms.  So a dump only *discovers* the
    connections of the watched ULID pairs (every ``ULP_DISCOVER_INTERVAL``, and at once when the
    watched pairs change); between dumps each known connection is asked for by its socket id (one
    hash lookup in the kernel, 5 us).
    """

    def __init__(self, discover_interval: float = ULP_DISCOVER_INTERVAL) -> None:
        self.discover_interval = discover_interval
        self.last_dump = float("-inf")
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG)
        self.sock.settimeout(1.0)  # the kernel answers at once; never hang the daemon on it
        self.tracker = LossTracker()
        self.seq = 0
        self.known: list[bytes] = []  # socket ids of the watched pairs' connections, from the last dump
        self.discovered_for: set[tuple[Address, Address]] = set()
        self.next_discovery = 0.0
        self.dumps = 0
        self.lookups = 0  # requests for one socket each

    def poll(self, watched: set[tuple[Address, Address]], now: float,
             detect: set[tuple[Address, Address]] | None = None) -> list[TcpTimeout]:
        """Read the watched pairs' connections; report timeouts of those of ``detect`` (None: all)."""
        if not watched:
            self.tracker.last.clear()
            self.tracker.pending.clear()
            self.discovered_for = set()
            return []
        try:
            if watched != self.discovered_for or now >= self.next_discovery:
                sockets = self._dump()
                self.known = [s.sockid for s in sockets if (s.local, s.peer) in watched]
                self.discovered_for, self.next_discovery = set(watched), now + self.discover_interval
                self.last_dump = now
            else:
                sockets = self._lookup(self.known)
        except OSError:  # a lost answer (timeout): dump again next time
            self.discovered_for = set()
            return []
        return self.tracker.update(sockets, watched, now, detect)

    def rediscover(self) -> None:
        """Dump at the next poll, or one ``ULP_DISCOVER_INTERVAL`` after the last dump (a quiet spell
        began: a connection opened since the last dump may be the one that failed)."""
        self.next_discovery = min(self.next_discovery, self.last_dump + ULP_DISCOVER_INTERVAL)

    def _dump(self) -> list[TcpState]:
        self.seq += 1
        self.dumps += 1
        self.sock.send(dump_request(self.seq))
        sockets: list[TcpState] = []
        done = False
        while not done:
            chunk = self.sock.recv(65536)
            found, done = parse_dump(chunk)
            sockets += found
            done = done or not chunk
        return sockets

    def _lookup(self, sockids: list[bytes]) -> list[TcpState]:
        """The named sockets, one request each in one send; a closed one is answered with an error."""
        if not sockids:
            return []
        self.seq += 1
        self.lookups += len(sockids)
        self.sock.send(b"".join(dump_request(self.seq, sockid) for sockid in sockids))
        sockets: list[TcpState] = []
        for _ in sockids:
            sockets += parse_dump(self.sock.recv(65536))[0]
        return sockets

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
