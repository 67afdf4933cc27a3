"""The responder's stateless validator (thesis 6.4.3.2 "Prueba de Contacto Previo"; RFC 5533 7.10).

The responder answers I1 (and unknown-tag payload packets) without creating any state: the
R1/R1bis carries ``HMAC(secret, nonce, tag, nonce, addresses)``.  Only an I2/I2bis that echoes
a validator the responder can recompute creates a context.  The secret rotates every
``lifetime`` seconds; the previous one stays valid for one more period so that an exchange
straddling a rotation completes.  Memory is two secrets, whatever the I1 rate.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass, field
from typing import Callable

VALIDATOR_LEN = 20


def _encode_part(part: object) -> bytes:
    if isinstance(part, ipaddress.IPv6Address):
        return part.packed
    if isinstance(part, int):
        return part.to_bytes(8, "big")
    if isinstance(part, bytes):
        return len(part).to_bytes(2, "big") + part
    raise TypeError(f"cannot bind {type(part).__name__} into a validator")


@dataclass
class ValidatorSecrets:
    lifetime: float
    random_bytes: Callable[[int], bytes] = secrets.token_bytes
    current: bytes = b""
    previous: bytes = b""
    rotated_at: float | None = None
    rotations: int = field(default=0)

    def _rotate_if_due(self, now: float) -> None:
        if self.rotated_at is None:
            self.current, self.rotated_at = self.random_bytes(32), now
        elif now - self.rotated_at >= self.lifetime:
            stale = now - self.rotated_at >= 2 * self.lifetime
            self.previous = b"" if stale else self.current
            self.current, self.rotated_at = self.random_bytes(32), now
            self.rotations += 1

    @staticmethod
    def _mac(secret: bytes, parts: tuple[object, ...]) -> bytes:
        message = b"".join(_encode_part(p) for p in parts)
        return hmac.new(secret, message, hashlib.sha256).digest()[:VALIDATOR_LEN]

    def make(self, now: float, *parts: object) -> bytes:
        self._rotate_if_due(now)
        return self._mac(self.current, parts)

    def check(self, now: float, validator: bytes, *parts: object) -> bool:
        self._rotate_if_due(now)
        return any(
            secret and hmac.compare_digest(self._mac(secret, parts), validator)
            for secret in (self.current, self.previous)
        )
