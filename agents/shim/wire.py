"""The Shim6 format family (RFC 5533 section 5, RFC 5534 section 5): its error types, the
header checksum, and the base every message and option is declared on.

Layouts themselves are declared in ``messages.py`` with the shared field kinds of
:mod:`agents.wirecodec`; decoding raises ``ShimDecodeError`` and nothing else, whatever the input.
"""

from __future__ import annotations

from ..wirecodec import Struct

SHIM6_PROTOCOL = 140
NO_NEXT_HEADER = 59


class ShimDecodeError(ValueError):
    """Bytes that are not a well-formed Shim6 header: the only error decoding raises."""


class ShimEncodeError(ValueError):
    """A value that cannot be put on the wire (out of range, mismatched counts)."""


class ShimStruct(Struct):
    """Base of every Shim6 message, option and report."""

    decode_error = ShimDecodeError
    encode_error = ShimEncodeError


def internet_checksum(data: bytes) -> int:
    """RFC 1071 one's complement sum; Shim6 sums the header alone, with no pseudo-header."""
    if len(data) % 2:
        data += b"\0"
    total = sum(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
