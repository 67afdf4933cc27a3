"""Structures declared by a field list, in the spirit of scapy's ``fields_desc``.

A subclass of :class:`Struct` that sets ``fields_desc`` becomes a frozen dataclass with one
attribute per public field, in order; ``to_bytes`` / ``from_bytes`` both walk that one list, so
the two directions cannot drift apart.  A family of formats (all Shim6 messages, all I2CP
structures) shares a base that names its errors::

    class ShimStruct(Struct):
        decode_error = ShimDecodeError
        encode_error = ShimEncodeError

Decoding raises ``decode_error`` and nothing else, whatever the input: fields fail through the
reader, ``validate`` is the hook for semantic checks, and anything else a constructor or hook
throws is turned into ``decode_error`` at the structure's boundary.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Self

from .fields import MISSING, Bytes, Count, Field, List, Text
from .io import CodecDecodeError, CodecEncodeError, Reader, Writer

#: What a malformed-but-parsed value can make a constructor or hook throw.
_LEAKS = (ValueError, TypeError, IndexError, KeyError, OverflowError, UnicodeError, AttributeError)


def _check_desc(cls: type, desc: tuple[Field, ...]) -> None:
    """Refuse, at import time, a declaration whose references do not resolve."""
    names = [f.name for f in desc if getattr(f, "name", None)]
    if len(names) != len(set(names)):
        raise TypeError(f"{cls.__name__}: duplicate field names in {names}")
    seen: set[str] = set()
    counts = {f.name: f for f in desc if isinstance(f, Count)}
    for f in desc:
        ref = getattr(f, "count", None) if isinstance(f, List) else getattr(f, "length", None) if isinstance(f, (Bytes, Text)) else None
        if ref is not None and (ref not in counts or ref not in seen):
            raise TypeError(f"{cls.__name__}.{f.name}: {ref!r} is not a Count declared before it")
        if isinstance(f, Count) and not set(f.targets) <= set(names):
            raise TypeError(f"{cls.__name__}.{f.name}: counts an undeclared field {f.of!r}")
        if getattr(f, "name", None):
            seen.add(f.name)


class Struct:
    """Base of declared structures (see the module docstring)."""

    fields_desc: ClassVar[tuple[Field, ...]]
    _public: ClassVar[tuple[str, ...]]  # attribute names, in order
    _steps: ClassVar[tuple[tuple[Field, str | None], ...]]  # every field with its name or None
    decode_error: ClassVar[type[Exception]] = CodecDecodeError
    encode_error: ClassVar[type[Exception]] = CodecEncodeError

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "fields_desc" not in cls.__dict__:
            return  # a family base: errors, helpers, no layout
        if any(dataclasses.is_dataclass(b) for b in cls.__mro__[1:]):
            raise TypeError(f"{cls.__name__}: a declared structure cannot extend another one")
        desc = cls.fields_desc = tuple(cls.fields_desc)
        _check_desc(cls, desc)
        cls._public = tuple(f.name for f in desc if f.public)
        cls._steps = tuple((f, getattr(f, "name", None) or None) for f in desc)
        cls.__annotations__ = {name: Any for name in cls._public}
        for f in desc:
            if f.public:
                default = dataclasses.MISSING if f.default is MISSING else f.default
                setattr(cls, f.name, dataclasses.field(default=default, repr=f.repr))
        dataclasses.dataclass(frozen=True)(cls)

    # --- encoding --------------------------------------------------------------------------

    def encode_into(self, out: Writer, stop_before: str | None = None) -> None:
        values = {name: getattr(self, name) for name in self._public}
        for f, name in self._steps:
            if name is not None and name == stop_before:
                return
            f.encode(values.get(name) if name else None, out, values)

    def to_bytes(self) -> bytes:
        out = Writer(self.encode_error)
        self.encode_into(out)
        return out.getvalue()

    def bytes_before(self, field_name: str) -> bytes:
        """The encoding of every field declared before ``field_name`` (what a signature covers)."""
        out = Writer(self.encode_error)
        self.encode_into(out, stop_before=field_name)
        return out.getvalue()

    # --- decoding --------------------------------------------------------------------------

    @classmethod
    def decode_values(cls, reader: Reader) -> dict[str, Any]:
        """The public values read from ``reader`` (hidden fields are read and dropped)."""
        ctx: dict[str, Any] = {}
        for f, name in cls._steps:
            value = f.decode(reader, ctx)
            if name:
                ctx[name] = value
        return {name: ctx[name] for name in cls._public}

    @classmethod
    def build(cls, values: dict[str, Any]) -> Self:
        """Construct from decoded values and run ``validate``; only ``decode_error`` escapes."""
        try:
            obj = cls(**values)
            obj.validate()
        except cls.decode_error:
            raise
        except _LEAKS as exc:
            raise cls.decode_error(f"{cls.__name__}: {exc}") from None
        return obj

    @classmethod
    def decode_from(cls, reader: Reader) -> Self:
        try:
            values = cls.decode_values(reader)
        except (cls.decode_error, reader.error):
            raise
        except _LEAKS as exc:
            raise cls.decode_error(f"{cls.__name__}: {exc}") from None
        return cls.build(values)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode exactly one structure: trailing octets are an error."""
        reader = Reader(data, error=cls.decode_error)
        obj = cls.decode_from(reader)
        reader.expect_end(cls.__name__)
        return obj

    def validate(self) -> None:
        """Hook for semantic checks after decoding; raise ``decode_error``."""


def public_fields(cls: type[Struct]) -> list[Field]:
    """The fields a user sets (the dataclass attributes), in order."""
    return [f for f in cls.fields_desc if f.name in cls._public]


__all__ = ["Struct", "public_fields", "MISSING"]
