"""One declarative way to describe a wire format, shared by the agents (see README.md).

A format is a :class:`Struct` subclass whose ``fields_desc`` lists typed fields; encoding and
decoding both derive from it, and decoding raises only the format's own error type.
"""

from .fields import (
    Absent,
    Align,
    Attr,
    Bytes,
    Const,
    Count,
    Field,
    Flag,
    IPv6,
    List,
    Nested,
    Reserved,
    Switch,
    Text,
    TLV,
    UInt,
)
from .io import CodecDecodeError, CodecEncodeError, Reader, Writer
from .struct import Struct, public_fields

__all__ = [
    "Absent",
    "Align",
    "Attr",
    "Bytes",
    "CodecDecodeError",
    "CodecEncodeError",
    "Const",
    "Count",
    "Field",
    "Flag",
    "IPv6",
    "List",
    "Nested",
    "Reader",
    "Reserved",
    "Struct",
    "Switch",
    "TLV",
    "Text",
    "UInt",
    "Writer",
    "public_fields",
]
