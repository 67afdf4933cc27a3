"""The field kinds a format is declared with (the entries of a ``fields_desc``).

Every kind implements ``encode(value, out, ctx)`` and ``decode(reader, ctx)``.  ``ctx`` holds
the structure's values: on encode all of them (so a counter can size a later list), on decode
those read so far (so a later field can be sized or chosen by an earlier one).  A kind whose
``name`` is None, or that is ``hidden``, is not an attribute of the structure: padding,
reserved bits, constants, and counters derived from another field.

Kinds raise through ``out.fail`` / ``reader.fail`` only, so they carry no agent's error type.
New kinds (a format-specific encoding) subclass :class:`Field` and follow the same rules.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping

from .io import Reader, Writer

class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


#: A field's ``default`` when it has none (the attribute must be given).
MISSING: Any = _Missing()
Context = Mapping[str, Any]


@dataclass(frozen=True)
class Field:
    """Base of every field kind.  ``default`` makes the attribute optional; ``repr=False`` keeps
    it out of the structure's repr (private keys)."""

    default: Any = field(default=MISSING, kw_only=True)
    repr: bool = field(default=True, kw_only=True)
    hidden: ClassVar[bool] = False
    # each kind declares ``name``: the attribute's name, or None for padding and constants

    def encode(self, value: Any, out: Writer, ctx: Context) -> None:
        raise NotImplementedError

    def decode(self, reader: Reader, ctx: Context) -> Any:
        raise NotImplementedError

    @property
    def public(self) -> bool:
        """An attribute of the structure (set by the user, compared, shown)."""
        return getattr(self, "name", None) is not None and not self.hidden


# --- integers and bits ------------------------------------------------------------------------


@dataclass(frozen=True)
class UInt(Field):
    """An unsigned big-endian integer of any bit width (8, 16, 47, 4...); not octet-aligned."""

    name: str
    bits: int

    def encode(self, value: Any, out: Writer, ctx: Context) -> None:
        out.bits(value, self.bits)

    def decode(self, reader: Reader, ctx: Context) -> int:
        return reader.bits(self.bits)


@dataclass(frozen=True)
class Flag(Field):
    """One bit, as a bool."""

    name: str

    def encode(self, value: Any, out: Writer, ctx: Context) -> None:
        out.bits(int(bool(value)), 1)

    def decode(self, reader: Reader, ctx: Context) -> bool:
        return bool(reader.bits(1))


@dataclass(frozen=True)
class Reserved(Field):
    """``bits`` zero bits on transmit, ignored on receipt."""

    bits: int
    name: None = None

    def encode(self, value: Any, out: Writer, ctx: Context) -> None:
        out.bits(0, self.bits)

    def decode(self, reader: Reader, ctx: Context) -> None:
        reader.bits(self.bits)


@dataclass(frozen=True)
class Const(Field):
    """``bits`` bits that must hold ``value`` (a version, a fixed length); anything else is an error."""

    bits: int
    value: int
    what: str = "constant"
    name: None = None

    def encode(self, value: Any, out: Writer, ctx: Context) -> None:
        out.bits(self.value, self.bits)

    def decode(self, reader: Reader, ctx: Context) -> None:
        got = reader.bits(self.bits)
        if got != self.value:
            reader.fail(f"{self.what} is {got}, must be {self.value}")


@dataclass(frozen=True)
class Count(Field):
    """A derived length field: the ``len()`` of field ``of`` (items of a list, octets of bytes).

    Several fields may share one count (``of=("methods", "locators")``): their lengths must agree.
    The sized field names this one (``List(count=...)``, ``Bytes(length=...)``); a ``Text``
    is counted in octets of ``encoding``.
    """

    name: str
    bits: int
    of: str | tuple[str, ...]
    encoding: str = "utf-8"
    hidden: ClassVar[bool] = True

    @property
    def targets(self) -> tuple[str, ...]:
        return (self.of,) if isinstance(self.of, str) else self.of

    def encode(self, value: Any, out: Writer, ctx: Context) -> None:
        lengths = {len(self._octets(ctx[t], out)) if isinstance(ctx[t], str) else len(ctx[t]) for t in self.targets}
        if len(lengths) > 1:
            out.fail(f"fields counted by {self.name} differ in length: {sorted(lengths)}")
        count = lengths.pop()
        if count >= 1 << self.bits:
            out.fail(f"too many {'/'.join(self.targets)}: {count} does not fit in {self.bits} bits")
        out.bits(count, self.bits)

    def _octets(self, text: str, out: Writer) -> bytes:
        try:
            return text.encode(self.encoding)
        except UnicodeError as exc:
            out.fail(f"{self.name}: not encodable as {self.encoding}: {exc}")

    def decode(self, reader: Reader, ctx: Context) -> int:
        return reader.bits(self.bits)


@dataclass(frozen=True)
class Align(Field):
    """Zero octets until ``(phase + offset) % boundary == 0``, offset counted from the region start.

    ``phase`` is how far the region itself starts from the boundary (an option's content starts
    4 octets into its 8-octet-aligned TLV).
    """

    boundary: int
    phase: int = 0
    name: None = None

    def _pad(self, offset: int) -> int:
        return -(self.phase + offset) % self.boundary

    def encode(self, value: Any, out: Writer, ctx: Context) -> None:
        out.octets(bytes(self._pad(out.length)))

    def decode(self, reader: Reader, ctx: Context) -> None:
        reader.take(self._pad(reader.offset))


# --- octet strings ----------------------------------------------------------------------------


def _sized(reader: Reader, ctx: Context, size: int | None, prefix: int | None, length: str | None) -> bytes:
    if size is not None:
        return reader.take(size)
    if prefix is not None:
        return reader.take(reader.bits(prefix))
    if length is not None:
        return reader.take(ctx[length])
    return reader.take(reader.remaining)


def _put_sized(raw: bytes, out: Writer, size: int | None, prefix: int | None) -> None:
    if size is not None and len(raw) != size:
        out.fail(f"expected {size} octets, got {len(raw)}")
    if prefix is not None:
        out.bits(len(raw), prefix)
    out.octets(raw)


def _one_length(kind: str, size: Any, prefix: Any, length: Any) -> None:
    if sum(x is not None for x in (size, prefix, length)) > 1:
        raise TypeError(f"{kind}: give at most one of size, prefix, length")


@dataclass(frozen=True)
class Bytes(Field):
    """Raw octets: ``size`` fixed, ``prefix`` bits of inline length before them, ``length`` the
    name of an earlier :class:`Count`, or (none of these) everything to the end of the region."""

    name: str
    size: int | None = None
    prefix: int | None = None
    length: str | None = None

    def __post_init__(self) -> None:
        _one_length("Bytes", self.size, self.prefix, self.length)

    def encode(self, value: Any, out: Writer, ctx: Context) -> None:
        if not isinstance(value, (bytes, bytearray)):
            out.fail(f"{self.name}: bytes expected, got {type(value).__name__}")
        _put_sized(bytes(value), out, self.size, self.prefix)

    def decode(self, reader: Reader, ctx: Context) -> bytes:
        return _sized(reader, ctx, self.size, self.prefix, self.length)


@dataclass(frozen=True)
class Text(Field):
    """A string in ``encoding``, sized like :class:`Bytes` (I2P ``String``: ``prefix=8``)."""

    name: str
    size: int | None = None
    prefix: int | None = None
    length: str | None = None
    encoding: str = "utf-8"

    def __post_init__(self) -> None:
        _one_length("Text", self.size, self.prefix, self.length)

    def encode(self, value: Any, out: Writer, ctx: Context) -> None:
        if not isinstance(value, str):
            out.fail(f"{self.name}: str expected, got {type(value).__name__}")
        try:
            raw = value.encode(self.encoding)
        except UnicodeError as exc:
            out.fail(f"{self.name}: not encodable as {self.encoding}: {exc}")
        _put_sized(raw, out, self.size, self.prefix)

    def decode(self, reader: Reader, ctx: Context) -> str:
        raw = _sized(reader, ctx, self.size, self.prefix, self.length)
        try:
            return raw.decode(self.encoding)
        except UnicodeError as exc:
            reader.fail(f"string is not {self.encoding}: {exc}")


@dataclass(frozen=True)
class IPv6(Field):
    """A 128-bit IPv6 address, as :class:`ipaddress.IPv6Address`."""

    name: str

    def encode(self, value: Any, out: Writer, ctx: Context) -> None:
        try:
            packed = ipaddress.IPv6Address(value).packed
        except ValueError as exc:
            out.fail(f"{self.name}: {exc}")
        out.octets(packed)

    def decode(self, reader: Reader, ctx: Context) -> ipaddress.IPv6Address:
        return ipaddress.IPv6Address(reader.take(16))


# --- composition ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Nested(Field):
    """Another :class:`~.struct.Struct` embedded in place (it delimits itself)."""

    name: str
    cls: type  # a Struct subclass

    def encode(self, value: Any, out: Writer, ctx: Context) -> None:
        if not isinstance(value, self.cls):
            out.fail(f"{self.name}: expected {self.cls.__name__}, got {type(value).__name__}")
        value.encode_into(out)

    def decode(self, reader: Reader, ctx: Context) -> Any:
        return self.cls.decode_from(reader)


@dataclass(frozen=True)
class List(Field):
    """A tuple of ``item`` values: ``count`` names an earlier :class:`Count`, ``prefix`` is an
    inline count of that many bits, neither means items up to the end of the region.
    ``limit`` caps the count both ways."""

    name: str
    item: Field
    count: str | None = None
    prefix: int | None = None
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.count is not None and self.prefix is not None:
            raise TypeError("List: give at most one of count, prefix")

    def encode(self, value: Any, out: Writer, ctx: Context) -> None:
        if not isinstance(value, (tuple, list)):
            out.fail(f"{self.name}: tuple expected, got {type(value).__name__}")
        if self.limit is not None and len(value) > self.limit:
            out.fail(f"{self.name}: at most {self.limit} items, got {len(value)}")
        if self.prefix is not None:
            out.bits(len(value), self.prefix)
        for item in value:
            self.item.encode(item, out, ctx)

    def decode(self, reader: Reader, ctx: Context) -> tuple[Any, ...]:
        if self.count is None and self.prefix is None:
            items = []
            while reader.remaining > 0:
                before = reader.offset
                items.append(self.item.decode(reader, ctx))
                if reader.offset == before:
                    reader.fail(f"{self.name}: item of no length")
            return tuple(items)
        count = ctx[self.count] if self.count is not None else reader.bits(self.prefix or 0)
        if self.limit is not None and count > self.limit:
            reader.fail(f"{self.name}: {count} items exceed the limit of {self.limit}")
        return tuple(self.item.decode(reader, ctx) for _ in range(count))


@dataclass(frozen=True)
class Switch(Field):
    """A field whose kind is chosen from the fields before it (a signature sized by the signing
    type, a query whose form follows the lookup type).  ``choose(ctx)`` returns the kind."""

    name: str
    choose: Callable[[Context], Field]

    def encode(self, value: Any, out: Writer, ctx: Context) -> None:
        self.choose(ctx).encode(value, out, ctx)

    def decode(self, reader: Reader, ctx: Context) -> Any:
        return self.choose(ctx).decode(reader, ctx)


@dataclass(frozen=True)
class Absent(Field):
    """Not on the wire (a :class:`Switch` case): the value must be None."""

    name: str = ""

    def encode(self, value: Any, out: Writer, ctx: Context) -> None:
        if value is not None:
            out.fail(f"{self.name or 'field'} must be None here")

    def decode(self, reader: Reader, ctx: Context) -> None:
        return None


@dataclass(frozen=True)
class Attr(Field):
    """An attribute the enclosing format carries, not this structure's body (an option's C bit,
    which the option's TLV header holds).  Needs a ``default``."""

    name: str

    def __post_init__(self) -> None:
        if self.default is MISSING:
            raise TypeError(f"Attr {self.name!r} needs a default")

    def encode(self, value: Any, out: Writer, ctx: Context) -> None:
        return None

    def decode(self, reader: Reader, ctx: Context) -> Any:
        return self.default


@dataclass(frozen=True)
class TLV(Field):
    """Type-length-value items up to the end of the region (Shim6 options).

    Each item: ``type_bits`` of type, one bit of ``flag`` (an attribute of the item) if given,
    ``length_bits`` of value length, the value, then zero padding so the item ends on ``align``
    octets.  ``registry`` maps a type to its :class:`~.struct.Struct` (which has ``TYPE``); other
    types decode to ``unknown(type=, data=, <flag>=)`` and encode back verbatim.
    """

    name: str
    registry: Mapping[int, type]  # type -> Struct subclass
    unknown: type
    type_bits: int
    length_bits: int
    flag: str | None = None
    align: int = 1

    @property
    def header_octets(self) -> int:
        return (self.type_bits + (self.flag is not None) + self.length_bits) // 8

    def _pad(self, length: int) -> int:
        return -(self.header_octets + length) % self.align

    def encode_item(self, item: Any, out: Writer) -> None:
        if isinstance(item, self.unknown):
            code, content = item.type, bytes(item.data)
        else:
            inner = Writer(out.error)
            item.encode_into(inner)
            code, content = type(item).TYPE, inner.getvalue()
        out.bits(code, self.type_bits)
        if self.flag is not None:
            out.bits(int(bool(getattr(item, self.flag))), 1)
        out.bits(len(content), self.length_bits)
        out.octets(content + bytes(self._pad(len(content))))

    def encode(self, value: Any, out: Writer, ctx: Context) -> None:
        for item in value:
            self.encode_item(item, out)

    def decode(self, reader: Reader, ctx: Context) -> tuple[Any, ...]:
        items = []
        while reader.remaining > 0:
            if reader.remaining < self.header_octets:
                reader.fail("truncated option header")
            code = reader.bits(self.type_bits)
            flag = {self.flag: bool(reader.bits(1))} if self.flag is not None else {}
            length = reader.bits(self.length_bits)
            if length + self._pad(length) > reader.remaining:
                reader.fail("option runs past the end of the header")
            region = reader.sub(length)
            reader.take(self._pad(length))
            cls = self.registry.get(code)
            if cls is None:
                items.append(self.unknown(type=code, data=region.take(length), **flag))
                continue
            values = cls.decode_values(region)
            if region.remaining:
                reader.fail(f"{cls.__name__} option longer than its fields")
            items.append(cls.build({**values, **flag}))
        return tuple(items)
