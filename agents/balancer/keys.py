"""The multihomed Destination's private keys, shared by every process that speaks for it.

Proposal 140 needs the *same* Destination on every router, so everything that determines its
bytes (the Ed25519 signing key, the X25519 encryption key and the padding) lives in one key file
that the balancer and all frontends load.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from .structures import (
    CERT_KEY,
    CRYPTO_X25519,
    SIG_ED25519,
    Certificate,
    Destination,
    KeySection,
    Lease2,
    LeaseSet2,
    SessionConfig,
)

_RAW = serialization.Encoding.Raw
_RAW_PRIV = (serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())


def _raw_public(key: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(_RAW, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class DestinationKeys:
    """Ed25519 signing key + X25519 (ECIES, crypto type 4) key + 32 bytes of identity padding."""

    signing_private: bytes
    encryption_private: bytes
    padding: bytes

    @classmethod
    def generate(cls) -> DestinationKeys:
        return cls(
            Ed25519PrivateKey.generate().private_bytes(*_RAW_PRIV),
            X25519PrivateKey.generate().private_bytes(*_RAW_PRIV),
            os.urandom(32),
        )

    @classmethod
    def from_seed(cls, seed: str) -> DestinationKeys:
        """Keys derived from a text seed: a lab file names its Destination, and every process that
        hosts it (and every client that targets it) gets the same keys without sharing a file."""
        def derive(label: bytes) -> bytes:
            return hashlib.sha256(b"mhlab-i2p-destination\0" + label + b"\0" + seed.encode()).digest()

        return cls(derive(b"ed25519"), derive(b"x25519"), derive(b"padding"))

    @property
    def destination(self) -> Destination:
        """Laid out as i2pd lays it out: key first / last, the padding block repeated."""
        enc_pub = _raw_public(X25519PrivateKey.from_private_bytes(self.encryption_private))
        sig_pub = _raw_public(Ed25519PrivateKey.from_private_bytes(self.signing_private))
        return Destination(
            public_area=enc_pub + self.padding * 7,
            signing_area=self.padding * 3 + sig_pub,
            certificate=Certificate(CERT_KEY, SIG_ED25519.to_bytes(2, "big") + CRYPTO_X25519.to_bytes(2, "big")),
        )

    @property
    def encryption_public(self) -> bytes:
        return _raw_public(X25519PrivateKey.from_private_bytes(self.encryption_private))

    def sign(self, data: bytes) -> bytes:
        return Ed25519PrivateKey.from_private_bytes(self.signing_private).sign(data)

    def session_config(self, options: dict[str, str], date_ms: int | None = None) -> SessionConfig:
        """A signed SessionConfig for CreateSession / ReconfigureSession."""
        unsigned = SessionConfig(
            self.destination, dict(options), int(time.time() * 1000) if date_ms is None else date_ms, b"\0" * 64
        )
        return replace(unsigned, signature=self.sign(unsigned.bytes_before("signature")))

    def lease_set(self, leases: tuple[Lease2, ...], published: int, flags: int = 0) -> LeaseSet2:
        """A signed LeaseSet2 whose ``expires`` reaches the latest lease (0 when there is none)."""
        latest = max((lease.end_s for lease in leases), default=published)
        unsigned = LeaseSet2(
            destination=self.destination,
            published=published,
            expires=min(max(latest - published, 0), 0xFFFF),
            flags=flags,
            properties={},
            keys=(KeySection(CRYPTO_X25519, self.encryption_public),),
            leases=leases,
            signature=b"\0" * 64,
        )
        return replace(unsigned, signature=self.sign(unsigned.signed_bytes()))

    def private_key_sections(self) -> tuple[KeySection, ...]:
        """What CreateLeaseSet2 hands the router so it can decrypt traffic for the Destination."""
        return (KeySection(CRYPTO_X25519, self.encryption_private),)

    # -- storage --------------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Write the key file readable by its owner only."""
        text = json.dumps(
            {
                "signing_ed25519": self.signing_private.hex(),
                "encryption_x25519": self.encryption_private.hex(),
                "padding": self.padding.hex(),
            },
            indent=2,
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text + "\n")

    @classmethod
    def load(cls, path: Path) -> DestinationKeys:
        data = json.loads(Path(path).read_text())
        keys = cls(
            bytes.fromhex(data["signing_ed25519"]),
            bytes.fromhex(data["encryption_x25519"]),
            bytes.fromhex(data["padding"]),
        )
        if (len(keys.signing_private), len(keys.encryption_private), len(keys.padding)) != (32, 32, 32):
            raise ValueError(f"{path}: keys and padding must be 32 bytes each")
        return keys

    @classmethod
    def load_or_create(cls, path: Path) -> DestinationKeys:
        if Path(path).exists():
            return cls.load(path)
        keys = cls.generate()
        keys.save(path)
        return keys
