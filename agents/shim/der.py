"""The little DER the CGA Parameter Data Structure needs.

A CGA parameter structure carries a DER ``SubjectPublicKeyInfo`` of unknown length followed
by extensions, so a parser must know where the key ends (``spki_length``).  An HBA without a
public key carries a random 384-bit "pseudo-key" encoded as an RSA SubjectPublicKeyInfo
(RFC 5535), which ``rsa_spki`` builds without asking a crypto library to accept a modulus
that is not a real RSA modulus.
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


def rsa_spki(modulus: int, exponent: int = PSEUDO_KEY_EXPONENT) -> bytes:
    """DER SubjectPublicKeyInfo { rsaEncryption, RSAPublicKey { modulus, exponent } }."""
    rsa_key = _tlv(0x30, _integer(modulus) + _integer(exponent))
    algorithm = _tlv(0x30, RSA_ENCRYPTION_OID + DER_NULL)
    return _tlv(0x30, algorithm + _tlv(0x03, b"\x00" + rsa_key))


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
