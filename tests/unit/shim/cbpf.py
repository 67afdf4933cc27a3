"""A classic BPF interpreter for the opcodes ``agents.shim.sockfilter`` emits, so its filters are
tested on packet bytes without a kernel (the lab test runs them in one)."""

import struct

from agents.shim import sockfilter as sf


def run(insns, packet: bytes) -> int:
    """What the kernel's ``sk_run_filter`` returns: bytes to keep, 0 = drop (also on a short packet)."""
    acc, pc = 0, 0
    while True:
        code, jt, jf, k = insns[pc]
        pc += 1
        if code == sf.LD_B_ABS:
            if k >= len(packet):
                return 0
            acc = packet[k]
        elif code == sf.LD_W_ABS:
            if k + 4 > len(packet):
                return 0
            acc = struct.unpack_from("!I", packet, k)[0]
        elif code == sf.ALU_AND_K:
            acc &= k
        elif code in (sf.JEQ_K, sf.JGE_K, sf.JGT_K):
            hit = {sf.JEQ_K: acc == k, sf.JGE_K: acc >= k, sf.JGT_K: acc > k}[code]
            pc += jt if hit else jf
        elif code == sf.RET_K:
            return k
        else:
            raise AssertionError(f"opcode {code:#x} not emitted by sockfilter")
