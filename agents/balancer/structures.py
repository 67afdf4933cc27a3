"""I2P common structures the balancer needs (spec: geti2p.net common-structures; i2pd Identity.cpp,
LeaseSet.cpp): Certificate, Destination (KeysAndCert), Lease, Lease2, LeaseSet2, SessionConfig.

Only Ed25519 destinations are *signed* here, but any destination a router sends us decodes,
because key and signature lengths come from the key-certificate tables below.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..wirecodec import Bytes, Field, List, Nested, Switch, UInt
from .wire import DecodeError, I2cpStruct, I2PMapping

CERT_NULL = 0
CERT_KEY = 5
SIG_ED25519 = 7
CRYPTO_ELGAMAL = 0
CRYPTO_X25519 = 4
STORE_TYPE_LEASESET2 = 3
MAX_LEASES = 16

# signing type -> (public key length, signature length); i2pd Signature.h / common-structures.
SIGNING_TYPES: dict[int, tuple[int, int]] = {
    0: (128, 40),  # DSA_SHA1
    1: (64, 64),  # ECDSA_SHA256_P256
    2: (96, 96),  # ECDSA_SHA384_P384
    3: (132, 132),  # ECDSA_SHA512_P521
    4: (256, 256),  # RSA_SHA256_2048
    5: (384, 384),  # RSA_SHA384_3072
    6: (512, 512),  # RSA_SHA512_4096
    7: (32, 64),  # EdDSA_SHA512_Ed25519
    8: (32, 64),  # EdDSA_SHA512_Ed25519ph
    9: (64, 64),  # GOST 256
    10: (128, 128),  # GOST 512
    11: (32, 64),  # RedDSA_SHA512_Ed25519
}
# crypto type -> public key length
CRYPTO_TYPES: dict[int, int] = {CRYPTO_ELGAMAL: 256, 1: 64, 2: 96, 3: 132, CRYPTO_X25519: 32}

_I2P_B64_ALT = b"-~"


ROUTER_IDENTITY_FIXED = 384 + 3  # key areas + certificate type and length


class RouterInfoError(ValueError):
    """A router.info too short to hold a RouterIdentity."""


def router_identity_hash(router_info: bytes) -> bytes:
    """A router's identity hash (what leases name as their tunnel gateway): SHA-256 of the
    RouterIdentity that opens its ``router.info``: 256 bytes of public key area, 128 of signing key
    area, then a certificate (type, 2-byte length, payload)."""
    if len(router_info) < ROUTER_IDENTITY_FIXED:
        raise RouterInfoError(f"router.info of {len(router_info)} bytes is shorter than a RouterIdentity")
    cert_len = int.from_bytes(router_info[ROUTER_IDENTITY_FIXED - 2:ROUTER_IDENTITY_FIXED], "big")
    end = ROUTER_IDENTITY_FIXED + cert_len
    if len(router_info) < end:
        raise RouterInfoError(f"router.info ends inside its identity's certificate ({cert_len} bytes)")
    return hashlib.sha256(router_info[:end]).digest()


def i2p_b64encode(data: bytes) -> str:
    """I2P's Base64 alphabet uses '-' and '~' instead of '+' and '/'."""
    return base64.b64encode(data, altchars=_I2P_B64_ALT).decode("ascii")


def i2p_b64decode(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), altchars=_I2P_B64_ALT, validate=True)


class Certificate(I2cpStruct):
    """Certificate: type, then a 2-byte-length payload (a key certificate holds sig+crypto types)."""

    fields_desc = (UInt("cert_type", 8), Bytes("payload", prefix=16))

    def validate(self) -> None:
        if self.cert_type == CERT_KEY and len(self.payload) < 4:
            raise DecodeError("key certificate shorter than 4 bytes")

    @property
    def signing_type(self) -> int:
        return int.from_bytes(self.payload[0:2], "big") if self.cert_type == CERT_KEY else 0

    @property
    def crypto_type(self) -> int:
        return int.from_bytes(self.payload[2:4], "big") if self.cert_type == CERT_KEY else CRYPTO_ELGAMAL


class Destination(I2cpStruct):
    """KeysAndCert: 256-byte public-key area, 128-byte signing-key area, certificate.

    For X25519 the key sits at the start of the first area; for Ed25519 at the end of the second;
    the rest is padding, which is part of the identity (it changes the hash), so it must be stored
    with the keys for every router to see the same Destination.
    """

    fields_desc = (
        Bytes("public_area", size=256),
        Bytes("signing_area", size=128),
        Nested("certificate", Certificate),
    )

    def __repr__(self) -> str:
        try:
            return f"Destination({self.b32_address})"
        except (KeyError, ValueError):
            return "Destination(<malformed>)"

    def validate(self) -> None:
        if self.certificate.cert_type not in (CERT_NULL, CERT_KEY):
            raise DecodeError(f"unsupported certificate type {self.certificate.cert_type}")
        if self.certificate.signing_type not in SIGNING_TYPES:
            raise DecodeError(f"unknown signing type {self.certificate.signing_type}")
        excess = SIGNING_TYPES[self.certificate.signing_type][0] - 128
        if excess > 0 and len(self.certificate.payload) < 4 + excess:
            raise DecodeError("signing key does not fit in the destination")

    @property
    def signature_length(self) -> int:
        return SIGNING_TYPES[self.certificate.signing_type][1]

    @property
    def signing_public_key(self) -> bytes:
        """The signing public key (only types whose key fits the 128-byte area)."""
        length = SIGNING_TYPES[self.certificate.signing_type][0]
        if length > 128:
            return self.signing_area + self.certificate.payload[4 : 4 + length - 128]
        return self.signing_area[128 - length :]

    @property
    def encryption_public_key(self) -> bytes:
        return self.public_area[: CRYPTO_TYPES.get(self.certificate.crypto_type, 256)]

    @property
    def ident_hash(self) -> bytes:
        return hashlib.sha256(self.to_bytes()).digest()

    @property
    def b32_address(self) -> str:
        return base64.b32encode(self.ident_hash).decode("ascii").rstrip("=").lower() + ".b32.i2p"

    def verify(self, signed: bytes, signature: bytes) -> bool:
        """Check a signature made by this destination (Ed25519 and RedDSA-verifiable types only)."""
        if self.certificate.signing_type != SIG_ED25519:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.signing_public_key).verify(signature, signed)
        except (InvalidSignature, ValueError):
            return False
        return True


def signature_of(field: str) -> Switch:
    """Signature whose length follows the signing type of the destination in ``field``."""

    def choose(ctx: Mapping[str, Any]) -> Field:
        return Bytes("signature", size=ctx[field].signature_length)

    return Switch("signature", choose)


class Lease(I2cpStruct):
    """Lease (44 bytes) as sent in RequestVariableLeaseSet: gateway, tunnel id, end date in ms."""

    fields_desc = (Bytes("gateway", size=32), UInt("tunnel_id", 32), UInt("end_ms", 64))


class Lease2(I2cpStruct):
    """Lease2 (40 bytes) as published in a LeaseSet2: end date in seconds."""

    fields_desc = (Bytes("gateway", size=32), UInt("tunnel_id", 32), UInt("end_s", 32))

    @classmethod
    def from_lease(cls, lease: Lease) -> Lease2:
        return cls(lease.gateway, lease.tunnel_id, lease.end_ms // 1000)


class KeySection(I2cpStruct):
    """An encryption public key in a LeaseSet2 (or a private key in CreateLeaseSet2)."""

    fields_desc = (UInt("key_type", 16), Bytes("key", prefix=16))


LS2_FLAG_OFFLINE_KEYS = 0x1
LS2_FLAG_UNPUBLISHED = 0x2


class LeaseSet2(I2cpStruct):
    """Standard LeaseSet2 (store type 3) without offline keys.

    The signature covers the store-type byte followed by every field before ``signature``.
    """

    fields_desc = (
        Nested("destination", Destination),
        UInt("published", 32),
        UInt("expires", 16),
        UInt("flags", 16),
        I2PMapping("properties"),
        List("keys", Nested("key", KeySection), prefix=8),
        List("leases", Nested("lease", Lease2), prefix=8, limit=MAX_LEASES),
        signature_of("destination"),
    )

    def validate(self) -> None:
        if self.flags & LS2_FLAG_OFFLINE_KEYS:
            raise DecodeError("LeaseSet2 with offline keys is not supported")

    def signed_bytes(self) -> bytes:
        return bytes([STORE_TYPE_LEASESET2]) + self.bytes_before("signature")

    def verify(self) -> bool:
        return self.destination.verify(self.signed_bytes(), self.signature)


class SessionConfig(I2cpStruct):
    """I2CP SessionConfig: destination, options, date (ms), signature over the first three."""

    fields_desc = (
        Nested("destination", Destination),
        I2PMapping("options"),
        UInt("date_ms", 64),
        signature_of("destination"),
    )

    def verify(self) -> bool:
        return self.destination.verify(self.bytes_before("signature"), self.signature)

