"""Declarative binary codecs: every I2P structure is declared once, as a field table.

A structure is a frozen dataclass whose fields carry a codec in their metadata (``wired(...)``).
Encoding and decoding both walk that one declaration, so the two directions cannot drift apart.
Decoding untrusted bytes (anything a router sends) raises only :class:`DecodeError`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Generic, Mapping, Protocol, Self, TypeVar

T = TypeVar("T")


class DecodeError(ValueError):
    """The bytes do not form the declared structure (truncated, out of range, trailing data...).

    This is the only exception the decoders in this package raise on bad input.
    """


class Reader:
    """A cursor over bytes that refuses to read past the end."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(bytes(data))
        self.pos = 0

    @property
    def remaining(self) -> int:
        return len(self._data) - self.pos

    def take(self, n: int) -> bytes:
        if n < 0 or n > self.remaining:
            raise DecodeError(f"need {n} bytes at offset {self.pos}, have {self.remaining}")
        chunk = bytes(self._data[self.pos : self.pos + n])
        self.pos += n
        return chunk

    def expect_end(self, what: str) -> None:
        if self.remaining:
            raise DecodeError(f"{self.remaining} trailing bytes after {what}")


class Codec(Protocol[T]):
    """How one field is written and read. ``done`` holds the fields already handled."""

    def encode(self, value: T, out: bytearray, done: Mapping[str, Any]) -> None: ...

    def decode(self, reader: Reader, done: Mapping[str, Any]) -> T: ...


@dataclass(frozen=True)
class UInt:
    """Big-endian unsigned integer of ``size`` bytes (I2P ``Integer``)."""

    size: int

    def encode(self, value: int, out: bytearray, done: Mapping[str, Any]) -> None:
        if not 0 <= value < 1 << (8 * self.size):
            raise ValueError(f"{value} does not fit in {self.size} bytes")
        out += value.to_bytes(self.size, "big")

    def decode(self, reader: Reader, done: Mapping[str, Any]) -> int:
        return int.from_bytes(reader.take(self.size), "big")


@dataclass(frozen=True)
class FixedBytes:
    """Exactly ``size`` raw bytes (hashes, keys, signatures)."""

    size: int

    def encode(self, value: bytes, out: bytearray, done: Mapping[str, Any]) -> None:
        if len(value) != self.size:
            raise ValueError(f"expected {self.size} bytes, got {len(value)}")
        out += value

    def decode(self, reader: Reader, done: Mapping[str, Any]) -> bytes:
        return reader.take(self.size)


@dataclass(frozen=True)
class Prefixed:
    """Raw bytes preceded by their length in ``size_len`` bytes (I2CP ``Payload``, cert payload)."""

    size_len: int

    def encode(self, value: bytes, out: bytearray, done: Mapping[str, Any]) -> None:
        UInt(self.size_len).encode(len(value), out, done)
        out += value

    def decode(self, reader: Reader, done: Mapping[str, Any]) -> bytes:
        return reader.take(UInt(self.size_len).decode(reader, done))


class Rest:
    """Every remaining byte (a trailing payload whose length the outer frame gives)."""

    def encode(self, value: bytes, out: bytearray, done: Mapping[str, Any]) -> None:
        out += value

    def decode(self, reader: Reader, done: Mapping[str, Any]) -> bytes:
        return reader.take(reader.remaining)


class I2PString:
    """I2P ``String``: one length byte then at most 255 bytes of UTF-8."""

    def encode(self, value: str, out: bytearray, done: Mapping[str, Any]) -> None:
        raw = value.encode("utf-8")
        if len(raw) > 255:
            raise ValueError("I2P strings hold at most 255 bytes")
        out.append(len(raw))
        out += raw

    def decode(self, reader: Reader, done: Mapping[str, Any]) -> str:
        raw = reader.take(reader.take(1)[0])
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"string is not UTF-8: {exc}") from None


class I2PMapping:
    """I2P ``Mapping``: 2-byte size, then ``key=value;`` pairs of Strings, sorted by key.

    Sorting is required: routers verify signatures over the mapping as the client wrote it, and
    the spec asks for key order so that both sides serialise a dict the same way.
    """

    def encode(self, value: Mapping[str, str], out: bytearray, done: Mapping[str, Any]) -> None:
        body = bytearray()
        for key in sorted(value):
            I2PString().encode(key, body, done)
            body += b"="
            I2PString().encode(value[key], body, done)
            body += b";"
        UInt(2).encode(len(body), out, done)
        out += body

    def decode(self, reader: Reader, done: Mapping[str, Any]) -> dict[str, str]:
        inner = Reader(Prefixed(2).decode(reader, done))
        result: dict[str, str] = {}
        while inner.remaining:
            key = I2PString().decode(inner, done)
            if inner.take(1) != b"=":
                raise DecodeError(f"mapping: '=' expected after {key!r}")
            val = I2PString().decode(inner, done)
            if inner.take(1) != b";":
                raise DecodeError(f"mapping: ';' expected after {val!r}")
            if key in result:
                raise DecodeError(f"mapping: duplicate key {key!r}")
            result[key] = val
        return result


@dataclass(frozen=True)
class ListOf(Generic[T]):
    """A count (``count_len`` bytes) followed by that many items; ``limit`` caps the count."""

    item: Codec[T]
    count_len: int = 1
    limit: int | None = None

    def encode(self, value: tuple[T, ...], out: bytearray, done: Mapping[str, Any]) -> None:
        if self.limit is not None and len(value) > self.limit:
            raise ValueError(f"at most {self.limit} items, got {len(value)}")
        UInt(self.count_len).encode(len(value), out, done)
        for item in value:
            self.item.encode(item, out, done)

    def decode(self, reader: Reader, done: Mapping[str, Any]) -> tuple[T, ...]:
        count = UInt(self.count_len).decode(reader, done)
        if self.limit is not None and count > self.limit:
            raise DecodeError(f"{count} items exceed the limit of {self.limit}")
        return tuple(self.item.decode(reader, done) for _ in range(count))


@dataclass(frozen=True)
class Depends(Generic[T]):
    """A field whose codec is chosen from the fields before it (signature length, lookup type)."""

    choose: Callable[[Mapping[str, Any]], Codec[T]]

    def encode(self, value: T, out: bytearray, done: Mapping[str, Any]) -> None:
        self.choose(done).encode(value, out, done)

    def decode(self, reader: Reader, done: Mapping[str, Any]) -> T:
        return self.choose(done).decode(reader, done)


class Absent:
    """A field that is not on the wire in this case (its value must be ``None``)."""

    def encode(self, value: None, out: bytearray, done: Mapping[str, Any]) -> None:
        if value is not None:
            raise ValueError("this field must be None here")

    def decode(self, reader: Reader, done: Mapping[str, Any]) -> None:
        return None


@dataclass(frozen=True)
class Nested(Generic[T]):
    """Another declared :class:`Structure` embedded in place (it delimits itself)."""

    cls: type

    def encode(self, value: Any, out: bytearray, done: Mapping[str, Any]) -> None:
        if not isinstance(value, self.cls):
            raise ValueError(f"expected {self.cls.__name__}, got {type(value).__name__}")
        value.encode_into(out)

    def decode(self, reader: Reader, done: Mapping[str, Any]) -> Any:
        return self.cls.decode_from(reader)


def wired(codec: Codec[Any], **kwargs: Any) -> Any:
    """Declare a dataclass field together with its wire codec."""
    return dataclasses.field(metadata={"wire": codec}, **kwargs)


class Structure:
    """Base of declared structures: subclasses are frozen dataclasses with ``wired`` fields.

    ``validate`` may be overridden to reject decoded values that parse but make no sense; it
    must raise :class:`DecodeError`.
    """

    def _wire_fields(self) -> list[tuple[str, Codec[Any]]]:
        return [(f.name, f.metadata["wire"]) for f in dataclasses.fields(self) if "wire" in f.metadata]  # type: ignore[arg-type]

    def encode_into(self, out: bytearray, stop_before: str | None = None) -> None:
        done: dict[str, Any] = {}
        for name, codec in self._wire_fields():
            if name == stop_before:
                return
            value = getattr(self, name)
            codec.encode(value, out, done)
            done[name] = value

    def to_bytes(self) -> bytes:
        out = bytearray()
        self.encode_into(out)
        return bytes(out)

    def bytes_before(self, field_name: str) -> bytes:
        """The encoding of every field declared before ``field_name`` (what a signature covers)."""
        out = bytearray()
        self.encode_into(out, stop_before=field_name)
        return bytes(out)

    @classmethod
    def decode_from(cls, reader: Reader) -> Self:
        done: dict[str, Any] = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if "wire" in f.metadata:
                done[f.name] = f.metadata["wire"].decode(reader, done)
        try:
            obj = cls(**done)
        except (TypeError, ValueError) as exc:
            raise DecodeError(f"{cls.__name__}: {exc}") from None
        obj.validate()
        return obj

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        reader = Reader(data)
        obj = cls.decode_from(reader)
        reader.expect_end(cls.__name__)
        return obj

    def validate(self) -> None:
        """Hook for semantic checks after decoding; raise DecodeError."""
