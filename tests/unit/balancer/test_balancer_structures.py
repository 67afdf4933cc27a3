"""Destination layout, signatures of SessionConfig / LeaseSet2 / datagrams, key file, payloads."""

from __future__ import annotations

import base64
import hashlib
import zlib
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from agents.balancer.datagrams import PROTO_DATAGRAM, AppPayload, RepliableDatagram
from agents.balancer.keys import DestinationKeys
from agents.balancer.structures import Destination, Lease2, LeaseSet2, SessionConfig, i2p_b64decode, i2p_b64encode
from agents.balancer.wire import DecodeError

KEYS = DestinationKeys.generate()


def test_destination_layout_matches_i2pd() -> None:
    """X25519 key first in the 256-byte area, Ed25519 key last in the 128-byte area, key cert 7/4."""
    raw = KEYS.destination.to_bytes()
    assert len(raw) == 391
    assert raw[:32] == KEYS.encryption_public
    signing_public = Ed25519PrivateKey.from_private_bytes(KEYS.signing_private).public_key().public_bytes_raw()
    assert raw[384 - 32 : 384] == signing_public
    assert raw[384:] == b"\x05\x00\x04\x00\x07\x00\x04"
    assert KEYS.destination.ident_hash == hashlib.sha256(raw).digest()
    b32 = KEYS.destination.b32_address
    assert b32.endswith(".b32.i2p") and len(b32) == 52 + 8
    assert base64.b32decode(b32[:52].upper() + "====") == KEYS.destination.ident_hash


def test_destination_is_stable_across_key_file_reload(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    KEYS.save(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert DestinationKeys.load(path).destination.to_bytes() == KEYS.destination.to_bytes()
    assert DestinationKeys.load_or_create(path) == KEYS


def test_i2p_base64_alphabet() -> None:
    data = bytes([0xFB, 0xFF, 0xBF])
    assert i2p_b64encode(data) == "-~-~"
    assert i2p_b64decode("-~-~") == data


def test_session_config_signature_covers_destination_options_date() -> None:
    config = KEYS.session_config({"inbound.length": "0"}, 1_700_000_000_000)
    assert config.verify()
    assert SessionConfig.from_bytes(config.to_bytes()).verify()
    assert not replace(config, options={"inbound.length": "1"}).verify()
    assert not replace(config, date_ms=config.date_ms + 1).verify()
    other = DestinationKeys.generate()
    assert not replace(config, destination=other.destination).verify()


@given(
    st.lists(st.builds(Lease2, st.binary(min_size=32, max_size=32), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)), max_size=16),
    st.integers(0, 2**32 - 1),
)
def test_leaseset2_round_trip_and_signature(leases: list[Lease2], published: int) -> None:
    ls = KEYS.lease_set(tuple(leases), published)
    again = LeaseSet2.from_bytes(ls.to_bytes())
    assert again == ls and again.verify()
    assert len(ls.to_bytes()) == 391 + 4 + 2 + 2 + 2 + 1 + (2 + 2 + 32) + 1 + 40 * len(leases) + 64


def test_leaseset2_signature_includes_store_type_and_detects_tampering() -> None:
    ls = KEYS.lease_set((Lease2(b"g" * 32, 5, 2_000_000_000),), 1_999_999_000)
    public = Ed25519PrivateKey.from_private_bytes(KEYS.signing_private).public_key()
    public.verify(ls.signature, b"\x03" + ls.to_bytes()[:-64])  # what i2pd checks (buf[-1] = store type)
    assert ls.expires == 1000
    assert not replace(ls, published=ls.published + 1).verify()
    assert not replace(ls, leases=(Lease2(b"h" * 32, 5, 2_000_000_000),)).verify()


def test_seventeen_leases_cannot_be_encoded() -> None:
    with pytest.raises(ValueError):
        KEYS.lease_set(tuple(Lease2(b"g" * 32, i, 10) for i in range(17)), 1)


def test_destination_with_unknown_signing_type_is_rejected() -> None:
    raw = bytearray(KEYS.destination.to_bytes())
    raw[387:389] = (99).to_bytes(2, "big")
    with pytest.raises(DecodeError):
        Destination.from_bytes(bytes(raw))


def test_app_payload_round_trip_and_i2pd_stored_block_form() -> None:
    payload = AppPayload(PROTO_DATAGRAM, 1234, 80, b"hello" * 50)
    assert AppPayload.from_bytes(payload.to_bytes()) == payload
    # i2pd's GzipNoCompression: a stored deflate block, ports big-endian at 4..7, protocol at 9
    data = b"ping"
    stored = b"\x01" + len(data).to_bytes(2, "little") + (len(data) ^ 0xFFFF).to_bytes(2, "little") + data
    raw = b"\x1f\x8b\x08\x00" + (7).to_bytes(2, "big") + (9).to_bytes(2, "big") + b"\x02\x11" + stored
    raw += zlib.crc32(data).to_bytes(4, "little") + len(data).to_bytes(4, "little")
    assert AppPayload.from_bytes(raw) == AppPayload(17, 7, 9, b"ping")


@pytest.mark.parametrize("mutate", [lambda b: b[:5], lambda b: b"\x1f\x8c" + b[2:], lambda b: b[:-4] + b"\0\0\0\0", lambda b: b[:3] + b"\x08" + b[4:]])
def test_app_payload_rejects_bad_gzip(mutate) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DecodeError):
        AppPayload.from_bytes(mutate(AppPayload(17, 1, 2, b"x" * 20).to_bytes()))


def test_repliable_datagram_signature() -> None:
    dgram = RepliableDatagram.signed_by(KEYS, b"request 1")
    again = RepliableDatagram.from_bytes(dgram.to_bytes())
    assert again.verify() and again.data == b"request 1"
    assert not replace(again, data=b"request 2").verify()
