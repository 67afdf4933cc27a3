"""Field-table machinery for the Shim6 wire formats (RFC 5533 section 5, RFC 5534 section 5).

Every message and option is declared once, in ``messages.py``, as a tuple of field kinds
(the way scapy declares layers); ``define`` turns the declaration into a typed frozen
dataclass, and the same declaration drives ``encode_fields`` and ``decode_fields``.  Decoding
raises ``ShimDecodeError`` and nothing else, whatever the input.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

SHIM6_PROTOCOL = 140
NO_NEXT_HEADER = 59


class ShimDecodeError(ValueError):
    """Bytes that are not a well-formed Shim6 header: the only error decoding raises."""


class ShimEncodeError(ValueError):
    """A value that cannot be put on the wire (out of range, mismatched counts)."""


def internet_checksum(data: bytes) -> int:
    """RFC 1071 one's complement sum; Shim6 sums the header alone, with no pseudo-header."""
    if len(data) % 2:
        data += b"\0"
    total = sum(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


class BitWriter:
    """Appends big-endian bit fields and whole octets."""

    def __init__(self) -> None:
        self._out = bytearray()
        self._acc = 0
        self._nbits = 0

    def bits(self, value: int, width: int) -> None:
        if not 0 <= value < (1 << width):
            raise ShimEncodeError(f"{value} does not fit in {width} bits")
        self._acc = (self._acc << width) | value
        self._nbits += width
        while self._nbits >= 8:
            self._nbits -= 8
            self._out.append((self._acc >> self._nbits) & 0xFF)
        self._acc &= (1 << self._nbits) - 1

    def octets(self, data: bytes) -> None:
        if self._nbits:
            raise ShimEncodeError("octet field not on an octet boundary")
        self._out += data

    @property
    def length(self) -> int:
        return len(self._out)

    def getvalue(self) -> bytes:
        if self._nbits:
            raise ShimEncodeError("field table does not end on an octet boundary")
        return bytes(self._out)


class BitReader:
    """Reads big-endian bit fields from ``data[start:end]``; overruns raise ShimDecodeError."""

    def __init__(self, data: bytes, start: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = start * 8
        self.start = start
        self.end = len(data) if end is None else end

    def bits(self, width: int) -> int:
        stop = self.pos + width
        if stop > self.end * 8:
            raise ShimDecodeError("truncated field")
        first, last = self.pos // 8, (stop + 7) // 8
        chunk = int.from_bytes(self.data[first:last], "big")
        self.pos = stop
        return (chunk >> (last * 8 - stop)) & ((1 << width) - 1)

    def octets(self, count: int) -> bytes:
        if self.pos % 8:
            raise ShimDecodeError("octet field not on an octet boundary")
        first = self.pos // 8
        if count < 0 or first + count > self.end:
            raise ShimDecodeError("truncated field")
        self.pos += count * 8
        return bytes(self.data[first : first + count])

    @property
    def offset(self) -> int:
        """Octets consumed since ``start``."""
        return self.pos // 8 - self.start

    @property
    def remaining(self) -> int:
        return self.end - (self.pos + 7) // 8


class FieldKind(Protocol):
    """What every entry of a field table can do."""

    name: str | None

    def encode(self, writer: BitWriter, values: dict[str, Any]) -> None: ...

    def decode(self, reader: BitReader, values: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class UInt:
    """An unsigned big-endian field of ``bits`` bits (nonces, context tags, generations)."""

    name: str
    bits: int
    py_type: ClassVar[type] = int

    def encode(self, writer: BitWriter, values: dict[str, Any]) -> None:
        writer.bits(values[self.name], self.bits)

    def decode(self, reader: BitReader, values: dict[str, Any]) -> None:
        values[self.name] = reader.bits(self.bits)


@dataclass(frozen=True)
class Reserved:
    """Zero on transmit, ignored on receipt (RFC 5533 wording for every Reserved field)."""

    bits: int
    name: None = None

    def encode(self, writer: BitWriter, values: dict[str, Any]) -> None:
        writer.bits(0, self.bits)

    def decode(self, reader: BitReader, values: dict[str, Any]) -> None:
        reader.bits(self.bits)


@dataclass(frozen=True)
class Address:
    """A 128-bit IPv6 address."""

    name: str
    py_type: ClassVar[type] = ipaddress.IPv6Address

    def encode(self, writer: BitWriter, values: dict[str, Any]) -> None:
        writer.octets(ipaddress.IPv6Address(values[self.name]).packed)

    def decode(self, reader: BitReader, values: dict[str, Any]) -> None:
        values[self.name] = ipaddress.IPv6Address(reader.octets(16))


@dataclass(frozen=True)
class Rest:
    """Opaque octets up to the end of the enclosing region (validators, signatures)."""

    name: str
    py_type: ClassVar[type] = bytes

    def encode(self, writer: BitWriter, values: dict[str, Any]) -> None:
        writer.octets(bytes(values[self.name]))

    def decode(self, reader: BitReader, values: dict[str, Any]) -> None:
        values[self.name] = reader.octets(reader.remaining)


@dataclass(frozen=True)
class Count:
    """A hidden length field: written as ``len(values[of])``, read to size a later array."""

    name: str
    bits: int
    of: str

    def encode(self, writer: BitWriter, values: dict[str, Any]) -> None:
        writer.bits(len(values[self.of]), self.bits)

    def decode(self, reader: BitReader, values: dict[str, Any]) -> None:
        values[self.name] = reader.bits(self.bits)


@dataclass(frozen=True)
class Align:
    """Zero padding until ``(phase + offset) % boundary == 0`` (8-octet alignment rules)."""

    boundary: int
    phase: int = 0
    name: None = None

    def _pad(self, offset: int) -> int:
        return -(self.phase + offset) % self.boundary

    def encode(self, writer: BitWriter, values: dict[str, Any]) -> None:
        writer.octets(bytes(self._pad(writer.length)))

    def decode(self, reader: BitReader, values: dict[str, Any]) -> None:
        reader.octets(self._pad(reader.offset))


@dataclass(frozen=True)
class Array:
    """``count``-sized (a Count field's name) or region-filling array of one item kind."""

    name: str
    item: Any  # a UInt, Address or Record used as a one-field table
    count: str | None = None
    py_type: ClassVar[type] = tuple

    def encode(self, writer: BitWriter, values: dict[str, Any]) -> None:
        for value in values[self.name]:
            self.item.encode(writer, {self.item.name: value})

    def decode(self, reader: BitReader, values: dict[str, Any]) -> None:
        items = []
        if self.count is not None:
            for _ in range(values[self.count]):
                slot: dict[str, Any] = {}
                self.item.decode(reader, slot)
                items.append(slot[self.item.name])
        else:
            while reader.remaining > 0:
                slot = {}
                self.item.decode(reader, slot)
                items.append(slot[self.item.name])
        values[self.name] = tuple(items)


@dataclass(frozen=True)
class SizedTuples:
    """Elements of ``size`` one-octet integers each, ``size`` read from an earlier field.

    Used by Locator Preferences, whose element length (1, 2 or 3: flags, priority, weight)
    is carried in the option itself.
    """

    name: str
    size: str
    allowed: tuple[int, ...]
    py_type: ClassVar[type] = tuple

    def encode(self, writer: BitWriter, values: dict[str, Any]) -> None:
        size = values[self.size]
        if size not in self.allowed:
            raise ShimEncodeError(f"element length {size} not in {self.allowed}")
        for element in values[self.name]:
            if len(element) != size:
                raise ShimEncodeError("element of the wrong length")
            writer.octets(bytes(element))

    def decode(self, reader: BitReader, values: dict[str, Any]) -> None:
        size = values[self.size]
        if size not in self.allowed:
            raise ShimDecodeError(f"element length {size} not in {self.allowed}")
        if reader.remaining % size:
            raise ShimDecodeError("elements do not fill the option")
        values[self.name] = tuple(tuple(reader.octets(size)) for _ in range(reader.remaining // size))


@dataclass(frozen=True)
class Record:
    """A nested field table that decodes to its own dataclass (Probe reports)."""

    name: str
    cls: Any

    def encode(self, writer: BitWriter, values: dict[str, Any]) -> None:
        encode_fields(writer, self.cls.LAYOUT, values[self.name])

    def decode(self, reader: BitReader, values: dict[str, Any]) -> None:
        values[self.name] = self.cls(**decode_fields(reader, self.cls.LAYOUT))


def public_fields(layout: tuple[Any, ...]) -> list[Any]:
    """The fields a user sets: named, and not derived (Count fields are derived)."""
    return [f for f in layout if f.name is not None and not isinstance(f, Count)]


def encode_fields(writer: BitWriter, layout: tuple[Any, ...], obj: Any) -> None:
    values = {f.name: getattr(obj, f.name) for f in public_fields(layout)}
    for f in layout:
        if isinstance(f, Array) and f.count is not None:
            counter = next(c for c in layout if isinstance(c, Count) and c.name == f.count)
            if len(values[f.name]) >= (1 << counter.bits):
                raise ShimEncodeError(f"too many {f.name}")
    for check in layout:
        if isinstance(check, Count):
            lengths = {len(values[a.name]) for a in layout if isinstance(a, Array) and a.count == check.name}
            if len(lengths) > 1:
                raise ShimEncodeError(f"arrays counted by {check.name} differ in length")
    for f in layout:
        f.encode(writer, values)


def decode_fields(reader: BitReader, layout: tuple[Any, ...]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for f in layout:
        f.decode(reader, values)
    return {f.name: values[f.name] for f in public_fields(layout)}


def define(name: str, layout: tuple[Any, ...], extra: list[tuple[str, Any, Any]], namespace: dict[str, Any]) -> type:
    """Make the frozen dataclass for a field table: one attribute per public field.

    ``extra`` adds trailing attributes with defaults (``options``, ``critical``).
    """
    fields: list[Any] = [(f.name, f.py_type) for f in public_fields(layout)]
    fields += [(n, t, dataclasses.field(default=d)) for n, t, d in extra]
    return dataclasses.make_dataclass(name, fields, frozen=True, namespace={"LAYOUT": layout, **namespace})
