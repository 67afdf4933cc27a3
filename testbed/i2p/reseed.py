"""The reseed file of a private I2P network: every router's ``router.info`` in one zip.

i2pd reseeds from ``reseed.zipfile`` when it knows too few routers; entries are named as the I2P reseed
servers name them, ``routerInfo-<I2P base64 of the router's identity hash>.dat``.  The identity hash is
SHA-256 of the RouterIdentity that opens the file (``agents.balancer.structures.router_identity_hash``).
"""

from __future__ import annotations

import base64
import io
import zipfile

from agents.balancer.structures import RouterInfoError, router_identity_hash

__all__ = ["RouterInfoError", "identity_hash", "i2p_b64", "reseed_zip"]

identity_hash = router_identity_hash


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
