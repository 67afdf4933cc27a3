"""Cryptographically Generated Addresses (RFC 3972; thesis 6.4.1.1).

An address whose interface identifier is a hash of a public key (and of a modifier, the
prefix and a collision count) proves, to anyone given the parameter structure, that the
holder of the matching private key chose it.  ``Sec`` buys brute-force resistance: the
generator must find a modifier that makes the first 16*Sec bits of Hash2 zero.

This module is the pure algorithm: generation with modifier search and duplicate detection
(the caller says which addresses are taken), verification, and RSASSA-PKCS1-v1_5 signatures
prefixed by a 128-bit message type tag.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from dataclasses import dataclass, replace
from typing import Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .der import DerError, spki_length

MODIFIER_LEN = 16
PREFIX_LEN = 8
MAX_COLLISION_COUNT = 2
MAX_SEC = 7

Address = ipaddress.IPv6Address
IsTaken = Callable[[Address], bool]


class CgaError(ValueError):
    """Base of every CGA failure; ``reason`` is a short machine-friendly word."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class CgaFormatError(CgaError):
    """A CGA Parameter Data Structure that cannot be parsed."""


class CgaVerifyError(CgaError):
    """An address, parameter structure or signature that does not verify."""


@dataclass(frozen=True)
class CgaExtension:
    """One RFC 4581 extension: 16-bit type, 16-bit length, data."""

    type: int
    data: bytes

    def encode(self) -> bytes:
        return self.type.to_bytes(2, "big") + len(self.data).to_bytes(2, "big") + self.data


@dataclass(frozen=True)
class CgaParams:
    """The CGA Parameter Data Structure (RFC 3972 section 3)."""

    modifier: bytes
    prefix: bytes
    collision_count: int
    public_key: bytes
    extensions: tuple[CgaExtension, ...] = ()

    def encode(self) -> bytes:
        return self.modifier + self.prefix + bytes([self.collision_count]) + self.public_key + self.extensions_bytes()

    def extensions_bytes(self) -> bytes:
        return b"".join(ext.encode() for ext in self.extensions)

    @classmethod
    def decode(cls, data: bytes) -> "CgaParams":
        head = MODIFIER_LEN + PREFIX_LEN + 1
        if len(data) < head + 2:
            raise CgaFormatError("short", f"{len(data)} octets")
        try:
            key_len = spki_length(data, head)
        except DerError as exc:
            raise CgaFormatError("public-key", str(exc)) from exc
        extensions = []
        offset = head + key_len
        while offset < len(data):
            if len(data) - offset < 4:
                raise CgaFormatError("extension", "truncated extension header")
            ext_type = int.from_bytes(data[offset : offset + 2], "big")
            ext_len = int.from_bytes(data[offset + 2 : offset + 4], "big")
            if offset + 4 + ext_len > len(data):
                raise CgaFormatError("extension", "extension runs past the end")
            extensions.append(CgaExtension(ext_type, bytes(data[offset + 4 : offset + 4 + ext_len])))
            offset += 4 + ext_len
        return cls(
            modifier=bytes(data[:MODIFIER_LEN]),
            prefix=bytes(data[MODIFIER_LEN : MODIFIER_LEN + PREFIX_LEN]),
            collision_count=data[MODIFIER_LEN + PREFIX_LEN],
            public_key=bytes(data[head : head + key_len]),
            extensions=tuple(extensions),
        )

    def with_prefix(self, prefix: bytes, collision_count: int | None = None) -> "CgaParams":
        cc = self.collision_count if collision_count is None else collision_count
        return replace(self, prefix=prefix, collision_count=cc)


def hash1(params: CgaParams) -> bytes:
    """The 64 leftmost bits of SHA-1 over the whole structure."""
    return hashlib.sha1(params.encode()).digest()[:8]


def hash2_tail(public_key: bytes, extensions: bytes) -> bytes:
    """What follows the modifier in the Hash2 input: 9 zero octets, key, extensions."""
    return bytes(9) + public_key + extensions


def hash2(params: CgaParams) -> bytes:
    """The 112 leftmost bits of SHA-1 with prefix and collision count zeroed."""
    return hashlib.sha1(params.modifier + hash2_tail(params.public_key, params.extensions_bytes())).digest()[:14]


def hash2_meets_sec(value: bytes, sec: int) -> bool:
    """True when the 16*Sec leftmost bits of Hash2 are zero."""
    return value[: 2 * sec] == bytes(2 * sec)


def interface_id(h1: bytes, sec: int) -> bytes:
    """Hash1 with Sec in the three leftmost bits and the u and g bits cleared."""
    return bytes([(sec << 5) | (h1[0] & 0x1C)]) + h1[1:8]


def address_from(prefix: bytes, iid: bytes) -> Address:
    return Address(prefix + iid)


def prefix_of(address: Address) -> bytes:
    return address.packed[:PREFIX_LEN]


def sec_of(address: Address) -> int:
    return address.packed[8] >> 5


def _check_sec(sec: int) -> None:
    if not 0 <= sec <= MAX_SEC:
        raise ValueError(f"Sec must be 0..{MAX_SEC}, not {sec}")


def find_modifier(start: bytes, tail: bytes, sec: int, max_iterations: int | None = None) -> tuple[bytes, int]:
    """Increment the modifier from ``start`` until Hash2 meets ``sec``; return it and the tries.

    Expected cost is 2**(16*Sec) SHA-1 computations, which is the point of Sec.
    """
    _check_sec(sec)
    value = int.from_bytes(start, "big")
    zeros = bytes(2 * sec)
    tries = 0
    sha1 = hashlib.sha1
    while True:
        modifier = value.to_bytes(MODIFIER_LEN, "big")
        tries += 1
        if sha1(modifier + tail).digest()[: 2 * sec] == zeros:
            return modifier, tries
        if max_iterations is not None and tries >= max_iterations:
            raise CgaError("modifier-search", f"no modifier within {max_iterations} tries")
        value = (value + 1) % (1 << 128)


def place_address(params: CgaParams, sec: int, is_taken: IsTaken | None = None) -> tuple[Address, CgaParams]:
    """Steps 4-8 of RFC 3972 generation: Hash1, address, duplicate detection by collision count."""
    for cc in range(MAX_COLLISION_COUNT + 1):
        candidate = params.with_prefix(params.prefix, cc)
        address = address_from(candidate.prefix, interface_id(hash1(candidate), sec))
        if is_taken is None or not is_taken(address):
            return address, candidate
    raise CgaError("collision", f"three collisions for prefix {params.prefix.hex()}")


def generate_cga(
    prefix: bytes,
    public_key: bytes,
    sec: int,
    modifier: bytes | None = None,
    extensions: tuple[CgaExtension, ...] = (),
    is_taken: IsTaken | None = None,
    max_iterations: int | None = None,
) -> tuple[Address, CgaParams]:
    """Generate one CGA (RFC 3972 section 4); ``modifier`` is where the search starts."""
    if len(prefix) != PREFIX_LEN:
        raise ValueError("prefix must be 8 octets")
    start = modifier if modifier is not None else secrets.token_bytes(MODIFIER_LEN)
    tail = hash2_tail(public_key, b"".join(ext.encode() for ext in extensions))
    found, _ = find_modifier(start, tail, sec, max_iterations)
    params = CgaParams(found, prefix, 0, public_key, extensions)
    return place_address(params, sec, is_taken)


def verify_cga(address: Address, params: CgaParams) -> None:
    """RFC 3972 section 5 verification; raises ``CgaVerifyError`` naming the failed step."""
    if params.collision_count > MAX_COLLISION_COUNT:
        raise CgaVerifyError("collision-count", f"{params.collision_count} > {MAX_COLLISION_COUNT}")
    if params.prefix != prefix_of(address):
        raise CgaVerifyError("prefix", "subnet prefix differs from the address")
    mask = bytes([0x1C]) + b"\xff" * 7
    iid = address.packed[8:]
    h1 = hash1(params)
    if any((a ^ b) & m for a, b, m in zip(h1, iid, mask)):
        raise CgaVerifyError("hash1", "interface identifier is not Hash1 of the parameters")
    sec = sec_of(address)
    if not hash2_meets_sec(hash2(params), sec):
        raise CgaVerifyError("sec", f"Hash2 lacks {16 * sec} leading zero bits")


def passes(check: Callable[[Address, CgaParams], None], address: Address, params: CgaParams) -> bool:
    """Turn a raising verifier into a yes/no answer."""
    try:
        check(address, params)
    except CgaVerifyError:
        return False
    return True


def is_valid_cga(address: Address, params: CgaParams) -> bool:
    return passes(verify_cga, address, params)


def public_key_der(key: rsa.RSAPublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def sign(private_key: rsa.RSAPrivateKey, type_tag: bytes, message: bytes) -> bytes:
    """RSASSA-PKCS1-v1_5 with SHA-1 over ``type_tag || message`` (RFC 3972 section 6)."""
    return private_key.sign(type_tag + message, padding.PKCS1v15(), hashes.SHA1())


def verify_signature(params: CgaParams, type_tag: bytes, message: bytes, signature: bytes) -> None:
    """Check a CGA signature against the key in ``params``; raises ``CgaVerifyError``."""
    try:
        key = serialization.load_der_public_key(params.public_key)
    except ValueError as exc:
        raise CgaVerifyError("public-key", "not a usable public key") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise CgaVerifyError("public-key", "not an RSA key")
    try:
        key.verify(signature, type_tag + message, padding.PKCS1v15(), hashes.SHA1())
    except InvalidSignature as exc:
        raise CgaVerifyError("signature", "RSA signature does not verify") from exc


def verify_signed(address: Address, params: CgaParams, type_tag: bytes, message: bytes, signature: bytes) -> None:
    """Thesis 6.4.1.1.4: verify the CGA, then the signature with its key."""
    verify_cga(address, params)
    verify_signature(params, type_tag, message, signature)
