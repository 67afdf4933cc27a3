"""The reseed file of a private I2P network: every router's ``router.info`` in one zip.

i2pd reseeds from ``reseed.zipfile`` when it knows too few routers; entries are named as the I2P reseed
servers name them, ``routerInfo-<I2P base64 of the router's identity hash>.dat``.  The identity hash is
SHA-256 of the RouterIdentity that opens the file: 256 bytes of public key area, 128 of signing key area,
then a certificate (type, 2-byte length, payload).
"""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile

IDENTITY_FIXED = 384 + 3  # key areas + certificate type and length


class RouterInfoError(ValueError):
    """A router.info too short to hold a RouterIdentity."""


def identity_hash(router_info: bytes) -> bytes:
    if len(router_info) < IDENTITY_FIXED:
        raise RouterInfoError(f"router.info of {len(router_info)} bytes is shorter than a RouterIdentity")
    cert_len = int.from_bytes(router_info[IDENTITY_FIXED - 2:IDENTITY_FIXED], "big")
    end = IDENTITY_FIXED + cert_len
    if len(router_info) < end:
        raise RouterInfoError(f"router.info ends inside its identity's certificate ({cert_len} bytes)")
    return hashlib.sha256(router_info[:end]).digest()


def i2p_b64(data: bytes) -> str:
    """I2P's base64 alphabet: '-' and '~' instead of '+' and '/'."""
    return base64.b64encode(data, altchars=b"-~").decode()


def reseed_zip(router_infos: dict[str, bytes]) -> bytes:
    """A reseed zip of these router.info files (keyed by node name, only for error messages)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for node, info in sorted(router_infos.items()):
            try:
                name = f"routerInfo-{i2p_b64(identity_hash(info))}.dat"
            except RouterInfoError as exc:
                raise RouterInfoError(f"{node}: {exc}") from None
            archive.writestr(name, info)
    return buf.getvalue()
