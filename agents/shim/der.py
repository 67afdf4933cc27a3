"""The little DER the CGA Parameter Data Structure needs.

A CGA parameter structure carries a DER ``SubjectPublicKeyInfo`` of unknown length followed
by extensions, so a parser must know where the key ends (``spki_length``).  An HBA without a
public key carries a random 384-bit "pseudo-key" in an RSA SubjectPublicKeyInfo (RFC 5535),
built here without asking a crypto library to accept a value that is not a real RSA key:
``bit_string_spki`` puts the value itself in the subjectPublicKey BIT STRING (what LinShim6's
libcga and Francis Dupont's HBA code do), ``rsa_spki`` wraps it as the modulus of an
RSAPublicKey (this agent's earlier encoding, still accepted on receipt).
"""

from __future__ import annotations

RSA_ENCRYPTION_OID = bytes.fromhex("06092a864886f70d010101")
DER_NULL = b"\x05\x00"
#: Public exponent written next to a pseudo-key (RFC 5535 only asks for an RSA SPKI shape).
PSEUDO_KEY_EXPONENT = 65537


class DerError(ValueError):
    """The bytes are not the DER this module understands."""


def _encode_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _tlv(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _encode_length(len(body)) + body


def _integer(value: int) -> bytes:
    body = value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big")
    return _tlv(0x02, body)


def _rsa_algorithm() -> bytes:
    return _tlv(0x30, RSA_ENCRYPTION_OID + DER_NULL)


def rsa_spki(modulus: int, exponent: int = PSEUDO_KEY_EXPONENT) -> bytes:
    """DER SubjectPublicKeyInfo { rsaEncryption, RSAPublicKey { modulus, exponent } }."""
    rsa_key = _tlv(0x30, _integer(modulus) + _integer(exponent))
    return _tlv(0x30, _rsa_algorithm() + _tlv(0x03, b"\x00" + rsa_key))


def bit_string_spki(value: bytes) -> bytes:
    """DER SubjectPublicKeyInfo { rsaEncryption, BIT STRING (0 unused bits) ``value`` }."""
    return _tlv(0x30, _rsa_algorithm() + _tlv(0x03, b"\x00" + value))


def _read_tlv(data: bytes, offset: int, tag: int) -> tuple[bytes, int]:
    """(body, offset after it) of the DER element of type ``tag`` at ``offset``."""
    if len(data) < offset + 2 or data[offset] != tag:
        raise DerError(f"expected DER tag {tag:#04x} at {offset}")
    first = data[offset + 1]
    start, length = offset + 2, first
    if first >= 0x80:
        count = first & 0x7F
        if count == 0 or count > 4:
            raise DerError("bad DER length")
        start, length = offset + 2 + count, int.from_bytes(data[offset + 2 : offset + 2 + count], "big")
    if len(data) < start + length:
        raise DerError("DER element runs past the end")
    return data[start : start + length], start + length


def spki_bit_string(spki: bytes) -> bytes:
    """The subjectPublicKey BIT STRING's octets (without the unused-bits octet) of an RSA SPKI."""
    body, _ = _read_tlv(spki, 0, 0x30)
    algorithm, after = _read_tlv(body, 0, 0x30)
    if algorithm != RSA_ENCRYPTION_OID + DER_NULL:
        raise DerError("not an rsaEncryption SubjectPublicKeyInfo")
    bits, _ = _read_tlv(body, after, 0x03)
    if not bits or bits[0] != 0:
        raise DerError("BIT STRING with unused bits")
    return bits[1:]


def rsa_modulus(spki: bytes) -> int:
    """The modulus of the RSAPublicKey inside an RSA SPKI."""
    key, _ = _read_tlv(spki_bit_string(spki), 0, 0x30)
    modulus, _ = _read_tlv(key, 0, 0x02)
    return int.from_bytes(modulus, "big")


def spki_length(data: bytes, offset: int = 0) -> int:
    """Total length (tag + length + body) of the DER SEQUENCE starting at ``offset``."""
    if len(data) < offset + 2 or data[offset] != 0x30:
        raise DerError("public key is not a DER SEQUENCE")
    first = data[offset + 1]
    if first < 0x80:
        header, body = 2, first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or len(data) < offset + 2 + count:
            raise DerError("bad DER length")
        header = 2 + count
        body = int.from_bytes(data[offset + 2 : offset + 2 + count], "big")
    total = header + body
    if len(data) < offset + total:
        raise DerError("public key runs past the end of the structure")
    return total
