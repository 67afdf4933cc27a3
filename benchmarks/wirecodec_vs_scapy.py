"""Why the agents carry their own wire codec rather than scapy at runtime: figures side by side.

Prints, for agents.wirecodec (the Shim6 formats) and scapy (the same I1 declared as a scapy
``Packet`` with ``fields_desc``):
- import time of a fresh interpreter (median of --repeat runs; ``python -c pass`` as the floor);
- time to decode one Shim6 I1 (median of timeit batches);
- what each does with malformed input: ours raises ``ShimDecodeError`` and nothing else; scapy
  accepts what it can (a bad checksum, trailing junk) and leaks ``struct.error`` on a
  truncated bit field.
Run: `.venv/bin/python benchmarks/wirecodec_vs_scapy.py [--repeat 11]`.  Timings are noisy on a
busy machine: medians, and compare the columns of one run only.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agents.shim import messages as m  # noqa: E402

SCAPY_I1 = """
from scapy.fields import BitField, ByteField, ShortField, XIntField
from scapy.packet import Packet

class ScapyI1(Packet):
    name = "Shim6 I1"
    fields_desc = [
        ByteField("nh", 59), ByteField("hdrlen", 1), BitField("p", 0, 1), BitField("type", 1, 7),
        BitField("tspec", 0, 7), BitField("s", 0, 1), ShortField("checksum", 0),
        BitField("r", 0, 1), BitField("ctag", 0, 47), XIntField("nonce", 0),
    ]
"""


def import_time(statement: str, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", statement], check=True, cwd=ROOT)
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def per_call(stmt, number: int = 2000, batches: int = 7) -> float:
    return statistics.median(timeit.repeat(stmt, number=number, repeat=batches)) / number


def outcome(decode, data: bytes) -> str:
    """'accepted' or the name of the exception a decoder raised."""
    try:
        decode(data)
    except Exception as exc:  # noqa: BLE001 - the point is to see which type escapes
        name = type(exc).__name__
        return name if type(exc).__module__ in ("builtins", "agents.shim.wire") else f"{type(exc).__module__}.{name}"
    return "accepted"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=11, help="fresh interpreters per import figure")
    args = parser.parse_args()

    floor = import_time("pass", args.repeat)
    ours = import_time("import agents.shim.messages", args.repeat)
    scapy_layer = import_time("import scapy.packet, scapy.fields", args.repeat)
    scapy_all = import_time("import scapy.all", args.repeat)

    namespace: dict = {}
    exec(SCAPY_I1, namespace)
    scapy_i1 = namespace["ScapyI1"]
    raw = m.encode(m.I1(initiator_context_tag=0x123456789ABC, initiator_nonce=0xDEADBEEF))
    assert scapy_i1(raw).ctag == 0x123456789ABC and m.decode(raw).initiator_nonce == 0xDEADBEEF
    t_ours = per_call(lambda: m.decode(raw))
    t_scapy = per_call(lambda: scapy_i1(raw))

    print(f"{'':34} {'wirecodec':>16} {'scapy':>16}")
    print(f"{'import, fresh interpreter (ms)':34} {1000 * (ours - floor):16.1f} {1000 * (scapy_layer - floor):16.1f}"
          f"   (scapy.all: {1000 * (scapy_all - floor):.0f} ms; interpreter floor {1000 * floor:.0f} ms, subtracted)")
    print(f"{'decode one I1 (us)':34} {1e6 * t_ours:16.1f} {1e6 * t_scapy:16.1f}")
    cases = (
        ("truncated I1 (10 of 16 octets)", raw[:10]),
        ("truncated I1 (14 of 16 octets)", raw[:14]),
        ("corrupted checksum", raw[:4] + b"\0\0" + raw[6:]),
        ("Hdr Ext Len 5, 16 octets given", raw[:1] + b"\x05" + raw[2:]),
    )
    for label, data in cases:
        print(f"{label:34} {outcome(m.decode, data):>16} {outcome(scapy_i1, data):>16}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
