"""HBA sets (RFC 5535): generation, membership, hybrid HBA/CGA, and every way to fail."""

import ipaddress

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from agents.shim import cga, hba

PREFIXES = [ipaddress.IPv6Address(f"2001:db8:{i}:1::").packed[:8] for i in (0xA, 0xB, 0xC)]


@pytest.fixture(scope="module")
def hba_set():
    return hba.generate_hba_set(PREFIXES, sec=1, modifier=bytes(16), pseudo_key=bytes(range(48)))


def test_one_address_per_prefix_all_verifying_against_any_params(hba_set):
    assert [a.packed[:8] for a in hba_set.addresses] == PREFIXES
    assert len({a.packed[8:] for a in hba_set.addresses}) == 3  # distinct interface ids
    for address in hba_set.addresses:
        for params in hba_set.params:
            hba.verify_hba(address, params)
        cga.verify_cga(address, hba_set.params_for(address))  # an HBA is also a valid CGA


def test_generation_is_deterministic_from_modifier_and_pseudo_key(hba_set):
    again = hba.generate_hba_set(PREFIXES, sec=1, modifier=bytes(16), pseudo_key=bytes(range(48)))
    assert again == hba_set
    assert cga.hash2(hba_set.params[0])[:2] == b"\0\0"


def test_pseudo_key_is_der_rsa_spki_and_p_bit_clear(hba_set):
    params = hba_set.params[0]
    ext = hba.multi_prefix_of(params)
    assert ext is not None and ext.has_public_key is False and ext.prefixes == tuple(PREFIXES)
    assert params.extensions[0].type == 0x0012
    assert len(params.extensions[0].data) == 4 + 8 * 3
    assert params.public_key.startswith(b"\x30") and bytes.fromhex("2a864886f70d010101") in params.public_key
    assert cga.CgaParams.decode(params.encode()) == params


def test_locator_not_in_set_fails(hba_set):
    outsider = ipaddress.IPv6Address(bytes.fromhex("20010db8000d0001") + hba_set.addresses[0].packed[8:])
    with pytest.raises(hba.HbaVerifyError) as info:
        hba.verify_hba(outsider, hba_set.params[0])
    assert info.value.reason == "not-in-set"


def test_tampered_prefix_list_fails(hba_set):
    params = hba_set.params[0]
    evil = hba.MultiPrefixExtension(False, tuple(PREFIXES) + (bytes.fromhex("20010db8000d0001"),))
    tampered = cga.CgaParams(params.modifier, params.prefix, 0, params.public_key, (evil.to_extension(),))
    with pytest.raises(hba.HbaVerifyError) as info:
        hba.verify_hba(hba_set.addresses[1], tampered)
    assert info.value.reason in {"hash1", "sec"}


def test_collision_count_above_two_fails(hba_set):
    with pytest.raises(hba.HbaVerifyError) as info:
        hba.verify_hba(hba_set.addresses[0], hba_set.params[0].with_prefix(PREFIXES[0], 3))
    assert info.value.reason == "collision-count"


def test_unmet_sec_fails(hba_set):
    packed = bytearray(hba_set.addresses[0].packed)
    packed[8] = (packed[8] & 0x1F) | (3 << 5)
    with pytest.raises(hba.HbaVerifyError) as info:
        hba.verify_hba(ipaddress.IPv6Address(bytes(packed)), hba_set.params[0])
    assert info.value.reason == "sec"


def test_plain_cga_is_not_an_hba():
    address, params = cga.generate_cga(PREFIXES[0], hba.pseudo_key_spki(bytes(48)), 0)
    with pytest.raises(hba.HbaVerifyError) as info:
        hba.verify_hba(address, params)
    assert info.value.reason == "not-hba"


def test_duplicate_in_one_prefix_only_bumps_that_address():
    base = hba.generate_hba_set(PREFIXES, 0, modifier=bytes(16), pseudo_key=bytes(48))
    taken = base.addresses[1]
    bumped = hba.generate_hba_set(PREFIXES, 0, modifier=bytes(16), pseudo_key=bytes(48), is_taken=lambda a: a == taken)
    assert [p.collision_count for p in bumped.params] == [0, 1, 0]
    assert bumped.addresses[0] == base.addresses[0] and bumped.addresses[1] != taken
    hba.verify_hba(bumped.addresses[1], bumped.params[0])  # other cc values are tried


def test_hybrid_set_verifies_as_hba_and_signs_as_cga():
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    der = cga.public_key_der(key.public_key())
    hybrid = hba.generate_hba_set(PREFIXES[:2], 0, public_key=der)
    assert hybrid.hybrid and hba.multi_prefix_of(hybrid.params[0]).has_public_key
    hba.verify_hba(hybrid.addresses[1], hybrid.params[0])
    tag = bytes(16)
    cga.verify_signed(hybrid.addresses[0], hybrid.params[0], tag, b"m", cga.sign(key, tag, b"m"))


# LinShim6 userspace/libs/libcga/hba_test.c: data from Francis Dupont's HBA implementation (Sec 1, three
# prefixes, modifier search started at mod_0, pseudo-key as the subjectPublicKey BIT STRING)
LINSHIM6_PSEUDO_KEY = bytes.fromhex(
    "a36844b530e9211a4b262b16467cb7dfba1f595c0194f275be5a4d386f2c3c2382508773c7867f9b3b9e63a09c7bc48f")
LINSHIM6_MOD_START = bytes.fromhex("89a8a8b2e858d8b8f2633f44d2d7c361")
LINSHIM6_MOD_FOUND = bytes.fromhex("89a8a8b2e858d8b8f2633f44d2d7c362")
LINSHIM6_PREFIXES = [bytes.fromhex(p) for p in ("fe80000000000000", "200106881f990001", "2001066073010001")]
LINSHIM6_ADDRESSES = ["fe80::2c5f:924d:c4c:824e", "2001:688:1f99:1:3cae:90c0:f2b6:e582", "2001:660:7301:1:3cd1:7773:6f00:f11b"]


def test_linshim6_known_answer():
    got = hba.generate_hba_set(LINSHIM6_PREFIXES, sec=1, modifier=LINSHIM6_MOD_START, pseudo_key=LINSHIM6_PSEUDO_KEY)
    assert got.modifier == LINSHIM6_MOD_FOUND
    assert cga.hash2(got.params[0]).hex() == "0000ad8a46e83c4494b7611dd011"  # hash2_1 of hba_test.c
    assert [str(a) for a in got.addresses] == LINSHIM6_ADDRESSES
    assert hba.pseudo_key_of(got.params[0].public_key) == (LINSHIM6_PSEUDO_KEY, hba.BIT_STRING)


def test_linshim6_set_verifies_from_its_own_parameter_structure():
    """What a LinShim6 peer sends: its structure, rebuilt from the known answer's inputs by hand."""
    key = bytes.fromhex("3042300d06092a864886f70d0101010500033100") + LINSHIM6_PSEUDO_KEY
    ext = hba.MultiPrefixExtension(False, tuple(LINSHIM6_PREFIXES)).to_extension()
    params = cga.CgaParams.decode(cga.CgaParams(LINSHIM6_MOD_FOUND, LINSHIM6_PREFIXES[1], 0, key, (ext,)).encode())
    for address in LINSHIM6_ADDRESSES:
        hba.verify_hba(ipaddress.IPv6Address(address), params)


def test_modulus_encoded_sets_still_verify_and_differ():
    old = hba.generate_hba_set(PREFIXES, sec=0, modifier=bytes(16), pseudo_key=bytes(range(48)), encoding=hba.RSA_MODULUS)
    new = hba.generate_hba_set(PREFIXES, sec=0, modifier=bytes(16), pseudo_key=bytes(range(48)))
    assert old.addresses != new.addresses
    assert hba.pseudo_key_of(old.params[0].public_key) == (bytes(range(48)), hba.RSA_MODULUS)
    for hset in (old, new):
        for address in hset.addresses:
            hba.verify_hba(address, cga.CgaParams.decode(hset.params[0].encode()))


def test_real_rsa_key_is_not_a_pseudo_key():
    key = cga.public_key_der(rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key())
    assert hba.pseudo_key_of(key) is None
    with pytest.raises(ValueError):
        hba.pseudo_key_spki(bytes(48), "base64")
