"""What travels inside I2CP SendMessage / MessagePayload: the gzip-framed I2P payload, and the
repliable datagram (protocol 17) that SAM DATAGRAM clients send.

The gzip header's MTIME field carries the source and destination ports and its OS byte the
protocol (6 streaming, 17 repliable datagram, 18 raw) — i2pd Datagram.cpp CreateDataMessage.
A repliable datagram is the sender's Destination, its signature over the payload (Ed25519 and
other non-DSA types sign the payload itself), then the payload.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from ..wirecodec import Bytes, Nested, UInt
from .keys import DestinationKeys
from .structures import Destination, signature_of
from .wire import DecodeError, I2cpStruct, Reader

GZIP_MAGIC = b"\x1f\x8b\x08"
PROTO_STREAMING = 6
PROTO_DATAGRAM = 17
PROTO_RAW = 18
MAX_UNCOMPRESSED = 0xFFFF


class PayloadHeader(I2cpStruct):
    """The 10-byte gzip header as I2P uses it."""

    fields_desc = (
        Bytes("magic", size=3),
        UInt("flags", 8),
        UInt("src_port", 16),
        UInt("dst_port", 16),
        UInt("xfl", 8),
        UInt("protocol", 8),
    )

    def validate(self) -> None:
        if self.magic != GZIP_MAGIC:
            raise DecodeError("I2CP payload is not gzip")
        if self.flags != 0:
            raise DecodeError(f"gzip flags {self.flags:#x} are not used by I2P")


@dataclass(frozen=True)
class AppPayload:
    protocol: int
    src_port: int
    dst_port: int
    data: bytes

    def to_bytes(self) -> bytes:
        compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        body = compressor.compress(self.data) + compressor.flush()
        header = PayloadHeader(GZIP_MAGIC, 0, self.src_port, self.dst_port, 0, self.protocol).to_bytes()
        trailer = zlib.crc32(self.data).to_bytes(4, "little") + (len(self.data) & 0xFFFFFFFF).to_bytes(4, "little")
        return header + body + trailer

    @classmethod
    def from_bytes(cls, raw: bytes) -> AppPayload:
        reader = Reader(raw)
        header = PayloadHeader.decode_from(reader)
        rest = reader.take(reader.remaining)
        inflater = zlib.decompressobj(-15)
        try:
            data = inflater.decompress(rest, MAX_UNCOMPRESSED + 1)
        except zlib.error as exc:
            raise DecodeError(f"bad deflate data: {exc}") from None
        if len(data) > MAX_UNCOMPRESSED or not inflater.eof:
            raise DecodeError("deflate stream too long or truncated")
        trailer = inflater.unused_data
        if len(trailer) != 8:
            raise DecodeError("gzip trailer missing")
        if int.from_bytes(trailer[:4], "little") != zlib.crc32(data):
            raise DecodeError("gzip CRC mismatch")
        if int.from_bytes(trailer[4:], "little") != len(data):
            raise DecodeError("gzip size mismatch")
        return cls(header.protocol, header.src_port, header.dst_port, data)


class RepliableDatagram(I2cpStruct):
    """Datagram1: sender, signature over ``data``, data."""

    fields_desc = (Nested("sender", Destination), signature_of("sender"), Bytes("data"))

    @classmethod
    def signed_by(cls, keys: DestinationKeys, data: bytes) -> RepliableDatagram:
        return cls(keys.destination, keys.sign(data), data)

    def verify(self) -> bool:
        return self.sender.verify(self.data, self.signature)
