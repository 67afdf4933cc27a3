"""Event-driven upper-layer feedback: the data path's quiet signals decide when TCP is looked at.

Sans-IO: the ring buffer's record layout (``bpfload.RingBuffer`` over plain buffers), the quiet
record and the map sizes against the compiled object, the spells (``ulp.QuietPairs``), and the loss
tracker reading some connections only as a baseline (``LossTracker.update(detect=...)``)."""

import ipaddress
import mmap
import shutil
import struct


from agents.shim import bpfload, ulp
from agents.shim.datapath import COUNTERS, WATCH_LAST_RX, WATCH_NEW, WATCH_SIGNALLED_RX, parse_quiet

from .test_datapath_host import map_sizes
from .test_feedback import LOCAL, OTHER, PEER, _diag_message

A = ipaddress.IPv6Address
PAIR, OTHER_PAIR = (A(LOCAL), A(PEER)), (A(LOCAL), A(OTHER))


def ring(records, size=4096, start=0):
    """A RingBuffer over plain buffers, holding ``records`` (data, flags) from consumer position ``start``."""
    rb = object.__new__(bpfload.RingBuffer)
    rb.size, rb.data_at = size, mmap.PAGESIZE
    rb.consumer, rb.producer = bytearray(8), bytearray(mmap.PAGESIZE + 2 * size)
    struct.pack_into("<Q", rb.consumer, 0, start)
    pos = start
    for data, flags in records:
        for copy in (0, size):  # the data area is mapped twice in a row
            at = rb.data_at + copy + (pos & (size - 1))
            if at + 8 + len(data) <= len(rb.producer):
                struct.pack_into("<I", rb.producer, at, len(data) | flags)
                rb.producer[at + 8:at + 8 + len(data)] = data
        pos += (len(data) + 8 + 7) & ~7
    struct.pack_into("<Q", rb.producer, 0, pos)
    return rb


def test_ring_drain_returns_committed_records_and_hands_their_space_back():
    rb = ring([(b"a" * 40, 0), (b"gone", bpfload.RINGBUF_DISCARD), (b"b" * 5, 0)])
    assert rb.drain() == [b"a" * 40, b"b" * 5]
    assert struct.unpack_from("<Q", rb.consumer, 0)[0] == 48 + 16 + 16
    assert rb.drain() == []


def test_ring_drain_stops_at_a_record_being_written_and_reads_one_that_wraps():
    busy = ring([(b"x" * 40, 0), (b"y" * 40, bpfload.RINGBUF_BUSY)])
    assert busy.drain() == [b"x" * 40]
    assert struct.unpack_from("<Q", busy.consumer, 0)[0] == 48  # the busy one waits for the next drain
    wrapped = ring([(bytes(range(40)), 0)], size=4096, start=4096 * 3 - 16)  # header and data cross the end
    assert wrapped.drain() == [bytes(range(40))]


def test_quiet_record_and_watch_value_match_the_c_structs(tmp_path):
    record = A(LOCAL).packed + A(PEER).packed + struct.pack("<Q", 123)
    assert parse_quiet(record).ulids == PAIR and parse_quiet(record).last_rx == 123
    assert parse_quiet(record[:39]) is None
    assert struct.unpack_from("<Q", WATCH_NEW, WATCH_SIGNALLED_RX)[0] == 2**64 - 1  # its first packet signals
    assert WATCH_NEW.count(0) == len(WATCH_NEW) - 8  # everything else starts at zero
    if shutil.which("clang"):
        sizes = map_sizes(bpfload.compile_object(str(tmp_path)))
        assert sizes["watch_map"] == (32, len(WATCH_NEW)) and sizes["quiet_ring"] == (0, 0)
        fields = {"read": ("rx_stamp_ns", "signalled_rx_ns"), "out": ("tx_packets", "tx_bytes", "last_tx_ns"),
                  "in": ("rx_packets", "rx_bytes", "last_rx_ns")}
        offsets = struct_offsets(tmp_path, "watch", *(f for group in fields.values() for f in group))
        assert COUNTERS["watch_map"] == (offsets["tx_packets"], offsets["tx_bytes"], offsets["rx_packets"],
                                         offsets["rx_bytes"])
        assert (offsets["signalled_rx_ns"], offsets["last_rx_ns"]) == (WATCH_SIGNALLED_RX, WATCH_LAST_RX)
        # what one side writes for every packet shares no cache line with what the other side reads or
        # writes, nor with the key in front of the value (every lookup reads it)
        spans = {g: (min(offsets[f] for f in fs), max(offsets[f] for f in fs) + 8) for g, fs in fields.items()}
        assert spans["out"][0] - spans["read"][1] >= 64 and spans["in"][0] - spans["out"][1] >= 64
        assert spans["out"][0] >= 64

def struct_offsets(tmp_path, struct_name, *fields):
    """offsetof each field of a struct of shim_tc.c, as clang -target bpf lays it out."""
    probe = tmp_path / "offsets.c"
    probe.write_text(f'#include "{bpfload.SOURCE}"\n#include <stddef.h>\n'
                     f"unsigned long long offsets[] = {{{', '.join(f'offsetof(struct {struct_name}, {f})' for f in fields)}}};\n")
    data = next(s for s in bpfload._sections(bpfload.compile_object(str(tmp_path), probe).read_bytes())
                if s["name"] == ".data")["data"]
    return dict(zip(fields, struct.unpack_from(f"<{len(fields)}Q", data)))


def test_a_spell_lasts_until_the_peer_is_heard_again():
    quiet, heard = ulp.QuietPairs(), {PAIR: 100, OTHER_PAIR: 7}
    assert quiet.signal(PAIR, 100) and not quiet.signal(PAIR, 100)  # one spell, however many signals
    assert quiet.signal(OTHER_PAIR, 7)
    quiet.settle(heard.get)
    assert quiet.pairs() == {PAIR, OTHER_PAIR}  # nothing heard since: both still quiet
    heard[PAIR] = 250
    quiet.settle(heard.get, keep={OTHER_PAIR})
    assert quiet.pairs() == {PAIR, OTHER_PAIR} - {PAIR}
    heard.pop(OTHER_PAIR)  # no longer watched by the data path
    quiet.settle(heard.get)
    assert quiet.pairs() == set()
    assert quiet.signal(PAIR, 250)  # a new spell


def test_a_timeout_on_a_pair_that_is_not_quiet_is_only_the_baseline():
    """Baseline reads (the pair hears its peer) record state; a later check compares with them."""
    tracker, watched = ulp.LossTracker(), {PAIR}

    def read(now, total_retrans, last_ack_ms, detect):
        states, _ = ulp.parse_dump(_diag_message(1, LOCAL, PEER, 0, 0, total_retrans, last_ack_ms))
        return [(t.kind, t.answered) for t in tracker.update(states, watched, now, detect)]

    assert read(1.0, 0, 0, set()) == []
    assert read(2.0, 3, 0, set()) == []  # fast retransmits while ACKs flow: recorded, nothing pending
    assert tracker.pending_pairs() == set()
    assert read(2.5, 4, 30, {PAIR}) == []  # the pair went quiet: a tail-loss probe since the baseline
    assert tracker.pending_pairs() == {PAIR}
    assert read(2.52, 4, 50, set()) == [(ulp.TLP, False)]  # pending: checked even outside ``detect``


def test_sock_diag_dumps_again_at_a_spells_start_at_most_once_a_second():
    diag = object.__new__(ulp.SockDiag)
    diag.discover_interval, diag.last_dump, diag.next_discovery = ulp.ULP_DISCOVER_QUIET_INTERVAL, 5.0, 15.0
    diag.rediscover()
    assert diag.next_discovery == 5.0 + ulp.ULP_DISCOVER_INTERVAL
