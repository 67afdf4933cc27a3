"""CGA (RFC 3972): the Appendix A known answer, generation, verification, signatures."""

import ipaddress
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from agents.shim import cga

VECTOR = Path(__file__).resolve().parent / "data" / "cga-rfc3972-appendix-a.json"  # copied from shared/vectors
PREFIX = ipaddress.IPv6Address("2001:db8:1:2::").packed[:8]
TAG = bytes.fromhex("4a3056624858574b3655416f506a6d48")


@pytest.fixture(scope="module")
def vector():
    return json.loads(VECTOR.read_text())


@pytest.fixture(scope="module")
def key():
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


def test_appendix_a_known_answer(vector):
    params = cga.CgaParams.decode(bytes.fromhex(vector["cga_parameters_hex"]))
    assert params.encode().hex() == vector["cga_parameters_hex"]
    assert cga.hash2(params).hex() == vector["expected_hash2_hex"]
    address = cga.address_from(params.prefix, cga.interface_id(cga.hash1(params), vector["sec"]))
    assert address == ipaddress.IPv6Address(vector["expected_address"])
    cga.verify_cga(address, params)


def test_appendix_a_regenerates_from_its_modifier(vector):
    params = cga.CgaParams.decode(bytes.fromhex(vector["cga_parameters_hex"]))
    address, found = cga.generate_cga(params.prefix, params.public_key, vector["sec"], modifier=params.modifier)
    assert found == params
    assert address == ipaddress.IPv6Address(vector["expected_address"])


def test_modifier_search_starts_where_told_and_meets_sec(key):
    der = cga.public_key_der(key.public_key())
    address, params = cga.generate_cga(PREFIX, der, 1, modifier=bytes(16))
    assert cga.hash2(params)[:2] == b"\0\0"
    assert int.from_bytes(params.modifier, "big") >= 0
    assert cga.sec_of(address) == 1
    assert address.packed[8] & 0x03 == 0  # u and g bits
    cga.verify_cga(address, params)


def test_collision_count_increments_on_duplicates(key):
    der = cga.public_key_der(key.public_key())
    first, _ = cga.generate_cga(PREFIX, der, 0, modifier=bytes(16))
    second, params = cga.generate_cga(PREFIX, der, 0, modifier=bytes(16), is_taken=lambda a: a == first)
    assert params.collision_count == 1 and second != first
    cga.verify_cga(second, params)
    with pytest.raises(cga.CgaError) as info:
        cga.generate_cga(PREFIX, der, 0, modifier=bytes(16), is_taken=lambda a: True)
    assert info.value.reason == "collision"


@pytest.mark.parametrize(
    "mutate, reason",
    [
        (lambda p: p.with_prefix(p.prefix, 3), "collision-count"),
        (lambda p: p.with_prefix(bytes(8)), "prefix"),
        (lambda p: cga.CgaParams(bytes(16), p.prefix, p.collision_count, p.public_key), "hash1"),
    ],
)
def test_verification_rejects_tampering(vector, mutate, reason):
    params = cga.CgaParams.decode(bytes.fromhex(vector["cga_parameters_hex"]))
    with pytest.raises(cga.CgaVerifyError) as info:
        cga.verify_cga(ipaddress.IPv6Address(vector["expected_address"]), mutate(params))
    assert info.value.reason == reason


def test_unmet_sec_fails(vector):
    params = cga.CgaParams.decode(bytes.fromhex(vector["cga_parameters_hex"]))
    packed = bytearray(ipaddress.IPv6Address(vector["expected_address"]).packed)
    packed[8] = (packed[8] & 0x1F) | (2 << 5)  # claim Sec=2: Hash2 has only 16 zero bits
    with pytest.raises(cga.CgaVerifyError) as info:
        cga.verify_cga(ipaddress.IPv6Address(bytes(packed)), params)
    assert info.value.reason == "sec"


def test_signature_round_trip_and_tamper(key):
    der = cga.public_key_der(key.public_key())
    address, params = cga.generate_cga(PREFIX, der, 0)
    signature = cga.sign(key, TAG, b"locators")
    cga.verify_signed(address, params, TAG, b"locators", signature)
    with pytest.raises(cga.CgaVerifyError) as info:
        cga.verify_signed(address, params, TAG, b"other locators", signature)
    assert info.value.reason == "signature"
    with pytest.raises(cga.CgaVerifyError):
        cga.verify_signature(params, bytes(16), b"locators", signature)  # wrong type tag


def test_decode_rejects_garbage():
    for data in (b"", bytes(30), bytes(25) + b"\x30\x82\xff\xff"):
        with pytest.raises(cga.CgaFormatError):
            cga.CgaParams.decode(data)
