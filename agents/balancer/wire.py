"""The I2P/I2CP format family: its error types, its base structure, and the one I2P-specific
field kind (``Mapping``).  Structures are declared with the shared field kinds of
:mod:`agents.wirecodec` (``structures.py``, ``messages.py``, ``datagrams.py``).

Decoding untrusted bytes (anything a router sends) raises only :class:`DecodeError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from .. import wirecodec
from ..wirecodec import Struct, Text


class DecodeError(ValueError):
    """The bytes do not form the declared structure (truncated, out of range, trailing data...).

    This is the only exception the decoders in this package raise on bad input.
    """


class EncodeError(ValueError):
    """A value that cannot be put on the wire (out of range, too many items, too long)."""


class Reader(wirecodec.Reader):
    """A cursor over I2P bytes: overruns raise :class:`DecodeError`."""

    error = DecodeError


class I2cpStruct(Struct):
    """Base of every I2P structure and I2CP message."""

    decode_error = DecodeError
    encode_error = EncodeError


#: I2P ``String``: one length octet, then at most 255 octets of UTF-8.
I2P_STRING = Text("string", prefix=8)


@dataclass(frozen=True)
class I2PMapping(wirecodec.Field):
    """I2P ``Mapping``: 2-byte size, then ``key=value;`` pairs of Strings, sorted by key.

    Sorting is required: routers verify signatures over the mapping as the client wrote it, and
    the spec asks for key order so that both sides serialise a dict the same way.
    """

    name: str = "mapping"

    def encode(self, value: Any, out: Any, ctx: Mapping[str, Any]) -> None:
        body = wirecodec.Writer(EncodeError)
        for key in sorted(value):
            I2P_STRING.encode(key, body, ctx)
            body += b"="
            I2P_STRING.encode(value[key], body, ctx)
            body += b";"
        raw = body.getvalue()
        if len(raw) > 0xFFFF:
            raise EncodeError(f"mapping of {len(raw)} bytes does not fit its 2-byte size")
        out += len(raw).to_bytes(2, "big") + raw

    def decode(self, reader: wirecodec.Reader, ctx: Mapping[str, Any]) -> dict[str, str]:
        inner = reader.sub(reader.bits(16))
        result: dict[str, str] = {}
        while inner.remaining:
            key = I2P_STRING.decode(inner, ctx)
            if inner.take(1) != b"=":
                inner.fail(f"mapping: '=' expected after {key!r}")
            val = I2P_STRING.decode(inner, ctx)
            if inner.take(1) != b";":
                inner.fail(f"mapping: ';' expected after {val!r}")
            if key in result:
                inner.fail(f"mapping: duplicate key {key!r}")
            result[key] = val
        return result
