"""Hash-Based Addresses (RFC 5535; the thesis's contribution, 6.4.1.2).

An HBA set binds all of a host's addresses (one per site prefix) to each other without
public-key cryptography: every interface identifier is a CGA hash over a parameter
structure that carries the whole prefix list in a Multi-Prefix extension.  A peer that
holds the structure can check that any locator belongs to the set with a few SHA-1s.

Three flavours (thesis 6.4.1.2.3): plain CGA (no extension), HBA (P bit 0, a random
384-bit pseudo-key in the key field) and hybrid HBA/CGA (P bit 1, a real public key).

The pseudo-key goes in the key field as an RSA SubjectPublicKeyInfo whose BIT STRING *is*
the 384-bit value (``BIT_STRING``), as LinShim6's libcga and Francis Dupont's HBA code
encode it: the same prefixes, modifier and pseudo-key give the same addresses as theirs
(known-answer test from LinShim6's ``hba_test.c``).  The agent's earlier encoding
(``RSA_MODULUS``: the value as the modulus of an RSAPublicKey, exponent 65537) can still be
generated on request.  On receipt the encoding does not matter: the peer's parameter
structure carries the key field's octets and verification hashes them as they are;
``pseudo_key_of`` reads the value out of either shape.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from .cga import (
    MODIFIER_LEN,
    PREFIX_LEN,
    Address,
    CgaExtension,
    CgaParams,
    CgaVerifyError,
    IsTaken,
    find_modifier,
    passes,
    hash2_tail,
    place_address,
    prefix_of,
    verify_cga,
)
from .der import DerError, bit_string_spki, rsa_modulus, rsa_spki, spki_bit_string

MULTI_PREFIX_EXT_TYPE = 0x0012
PSEUDO_KEY_BITS = 384
BIT_STRING = "bit-string"  # LinShim6 / F. Dupont: the value is the subjectPublicKey BIT STRING
RSA_MODULUS = "rsa-modulus"  # the value as an RSAPublicKey modulus, exponent 65537
PSEUDO_KEY_ENCODINGS = (BIT_STRING, RSA_MODULUS)


class HbaVerifyError(CgaVerifyError):
    """A locator that is not a member of the HBA set described by a parameter structure."""


@dataclass(frozen=True)
class MultiPrefixExtension:
    """RFC 5535 section 3.1: P bit (a real public key is present) and the 64-bit prefixes."""

    has_public_key: bool
    prefixes: tuple[bytes, ...]

    def to_extension(self) -> CgaExtension:
        flags = (0x80000000 if self.has_public_key else 0).to_bytes(4, "big")
        return CgaExtension(MULTI_PREFIX_EXT_TYPE, flags + b"".join(self.prefixes))

    @classmethod
    def from_extension(cls, ext: CgaExtension) -> "MultiPrefixExtension":
        data = ext.data
        if ext.type != MULTI_PREFIX_EXT_TYPE or len(data) < 4 or (len(data) - 4) % PREFIX_LEN:
            raise HbaVerifyError("multi-prefix", "malformed Multi-Prefix extension")
        prefixes = tuple(data[i : i + PREFIX_LEN] for i in range(4, len(data), PREFIX_LEN))
        return cls(bool(data[0] & 0x80), prefixes)


def pseudo_key_spki(pseudo_key: bytes, encoding: str = BIT_STRING) -> bytes:
    """Encode a 384-bit random value as an RSA SubjectPublicKeyInfo (RFC 5535 step 2)."""
    if len(pseudo_key) * 8 != PSEUDO_KEY_BITS:
        raise ValueError(f"pseudo-key must be {PSEUDO_KEY_BITS} bits")
    if encoding == BIT_STRING:
        return bit_string_spki(pseudo_key)
    if encoding == RSA_MODULUS:
        return rsa_spki(int.from_bytes(pseudo_key, "big"))
    raise ValueError(f"unknown pseudo-key encoding {encoding!r} ({', '.join(PSEUDO_KEY_ENCODINGS)})")


def pseudo_key_of(public_key: bytes) -> tuple[bytes, str] | None:
    """(384-bit value, encoding) if the key field holds a pseudo-key in either shape, else None."""
    try:
        bits = spki_bit_string(public_key)
    except DerError:
        return None
    if len(bits) * 8 == PSEUDO_KEY_BITS:
        return bits, BIT_STRING
    try:
        modulus = rsa_modulus(public_key)
    except DerError:
        return None
    if modulus.bit_length() <= PSEUDO_KEY_BITS and public_key == pseudo_key_spki(
            modulus.to_bytes(PSEUDO_KEY_BITS // 8, "big"), RSA_MODULUS):
        return modulus.to_bytes(PSEUDO_KEY_BITS // 8, "big"), RSA_MODULUS
    return None


def multi_prefix_of(params: CgaParams) -> MultiPrefixExtension | None:
    for ext in params.extensions:
        if ext.type == MULTI_PREFIX_EXT_TYPE:
            return MultiPrefixExtension.from_extension(ext)
    return None


@dataclass(frozen=True)
class HbaSet:
    """One address per prefix and the parameter structure that proves each of them."""

    sec: int
    addresses: tuple[Address, ...]
    params: tuple[CgaParams, ...]
    hybrid: bool

    def params_for(self, address: Address) -> CgaParams:
        for candidate, params in zip(self.addresses, self.params):
            if candidate == address:
                return params
        raise KeyError(str(address))

    @property
    def modifier(self) -> bytes:
        return self.params[0].modifier


def generate_hba_set(
    prefixes: list[bytes],
    sec: int,
    public_key: bytes | None = None,
    modifier: bytes | None = None,
    pseudo_key: bytes | None = None,
    is_taken: IsTaken | None = None,
    max_iterations: int | None = None,
    encoding: str = BIT_STRING,
) -> HbaSet:
    """RFC 5535 section 3.2: one modifier search, then one Hash1 per prefix.

    With ``public_key`` the set is hybrid HBA/CGA; without, a random (or given) pseudo-key
    fills the key field, encoded as ``encoding`` says.  ``modifier`` is where the search starts.
    """
    if not prefixes:
        raise ValueError("an HBA set needs at least one prefix")
    if len(set(prefixes)) != len(prefixes) or any(len(p) != PREFIX_LEN for p in prefixes):
        raise ValueError("prefixes must be distinct 8-octet values")
    if public_key is not None and pseudo_key is not None:
        raise ValueError("give a public key or a pseudo-key, not both")
    key = public_key if public_key is not None else pseudo_key_spki(
        pseudo_key or secrets.token_bytes(PSEUDO_KEY_BITS // 8), encoding)
    extension = MultiPrefixExtension(public_key is not None, tuple(prefixes)).to_extension()
    start = modifier if modifier is not None else secrets.token_bytes(MODIFIER_LEN)
    found, _ = find_modifier(start, hash2_tail(key, extension.encode()), sec, max_iterations)
    addresses, all_params = [], []
    for prefix in prefixes:
        address, params = place_address(CgaParams(found, prefix, 0, key, (extension,)), sec, is_taken)
        addresses.append(address)
        all_params.append(params)
    return HbaSet(sec, tuple(addresses), tuple(all_params), public_key is not None)


def verify_hba(address: Address, params: CgaParams) -> None:
    """RFC 5535 section 5 / thesis 6.4.1.2.6: is ``address`` a member of the set?

    The prefix must be in the Multi-Prefix extension; the structure, with its subnet prefix
    replaced by the address's, must then pass CGA verification.  Each address of a set may
    carry its own collision count (duplicate detection ran per address), so the counts
    0..2 are tried, starting with the one in the structure.
    """
    extension = multi_prefix_of(params)
    if extension is None:
        raise HbaVerifyError("not-hba", "no Multi-Prefix extension")
    prefix = prefix_of(address)
    if prefix not in extension.prefixes:
        raise HbaVerifyError("not-in-set", f"prefix {prefix.hex()} is not in the set")
    if params.collision_count > 2:
        raise HbaVerifyError("collision-count", f"{params.collision_count} > 2")
    counts = [params.collision_count] + [cc for cc in range(3) if cc != params.collision_count]
    last: CgaVerifyError | None = None
    for cc in counts:
        try:
            verify_cga(address, params.with_prefix(prefix, cc))
            return
        except CgaVerifyError as exc:
            last = exc
            if exc.reason == "sec":
                break
    assert last is not None
    raise HbaVerifyError(last.reason, str(last))


def is_hba_member(address: Address, params: CgaParams) -> bool:
    return passes(verify_hba, address, params)
