"""Bit- and octet-level cursors over wire data.

Both carry the error class of the format being handled (``ShimDecodeError``, the I2CP
``DecodeError``...), so a field never needs to know which agent it serves, and a format raises
its one error type and nothing else.
"""

from __future__ import annotations

from typing import NoReturn


class CodecDecodeError(ValueError):
    """Default decode error, for formats that do not name their own."""


class CodecEncodeError(ValueError):
    """Default encode error, for formats that do not name their own."""


class Writer:
    """Appends big-endian bit fields and whole octets; ``out += data`` appends octets."""

    def __init__(self, error: type[Exception] = CodecEncodeError) -> None:
        self.error = error
        self._out = bytearray()
        self._acc = 0
        self._nbits = 0

    def fail(self, message: str) -> NoReturn:
        raise self.error(message)

    def bits(self, value: int, width: int) -> None:
        if not isinstance(value, int) or not 0 <= value < (1 << width):
            self.fail(f"{value!r} does not fit in {width} bits")
        if not self._nbits and not width % 8:
            self._out += value.to_bytes(width // 8, "big")
            return
        self._acc = (self._acc << width) | value
        self._nbits += width
        while self._nbits >= 8:
            self._nbits -= 8
            self._out.append((self._acc >> self._nbits) & 0xFF)
        self._acc &= (1 << self._nbits) - 1

    def octets(self, data: bytes) -> None:
        if self._nbits:
            self.fail("octet field not on an octet boundary")
        self._out += data

    def __iadd__(self, data: bytes) -> Writer:
        self.octets(bytes(data))
        return self

    @property
    def length(self) -> int:
        """Whole octets written so far."""
        return len(self._out)

    def getvalue(self) -> bytes:
        if self._nbits:
            self.fail("fields do not end on an octet boundary")
        return bytes(self._out)


class Reader:
    """Reads big-endian bit fields and octets from ``data[start:end]``; overruns raise ``error``."""

    error: type[Exception] = CodecDecodeError

    def __init__(self, data: bytes, start: int = 0, end: int | None = None, *, error: type[Exception] | None = None) -> None:
        self.data = data if isinstance(data, bytes) else bytes(data)
        if error is not None:
            self.error = error
        self.start = start
        self.end = len(self.data) if end is None else min(end, len(self.data))
        self._bit = start * 8

    def fail(self, message: str) -> NoReturn:
        raise self.error(message)

    def bits(self, width: int) -> int:
        stop = self._bit + width
        if stop > self.end * 8:
            self.fail("truncated field")
        if not self._bit % 8 and not width % 8:
            first = self._bit // 8
            self._bit = stop
            return int.from_bytes(self.data[first : stop // 8], "big")
        first, last = self._bit // 8, (stop + 7) // 8
        chunk = int.from_bytes(self.data[first:last], "big")
        self._bit = stop
        return (chunk >> (last * 8 - stop)) & ((1 << width) - 1)

    def take(self, count: int) -> bytes:
        if self._bit % 8:
            self.fail("octet field not on an octet boundary")
        first = self._bit // 8
        if count < 0 or first + count > self.end:
            self.fail(f"need {count} octets at offset {first - self.start}, have {self.end - first}")
        self._bit += count * 8
        return self.data[first : first + count]

    def sub(self, count: int) -> Reader:
        """A reader over the next ``count`` octets (a length-delimited region); skips them here."""
        first = self._bit // 8
        self.take(count)
        return type(self)(self.data, first, first + count, error=self.error)

    def expect_end(self, what: str) -> None:
        if self.remaining:
            self.fail(f"{self.remaining} trailing octets after {what}")

    @property
    def offset(self) -> int:
        """Whole octets consumed since ``start`` (what alignment is measured from)."""
        return self._bit // 8 - self.start

    @property
    def remaining(self) -> int:
        return self.end - (self._bit + 7) // 8
