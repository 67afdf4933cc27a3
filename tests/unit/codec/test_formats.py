"""Properties of every declared wire format (Shim6 and I2CP): decode(encode(x)) == x for
generated values, and random or truncated bytes raise only the format's own decode error."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents import wirecodec as wc
from agents.balancer import datagrams, messages, structures
from agents.balancer.keys import DestinationKeys
from agents.balancer.wire import I2PMapping
from agents.shim import messages as shim

from .strategies import values_of

KEYS = [DestinationKeys.generate() for _ in range(2)]
text = st.text(max_size=20).filter(lambda s: len(s.encode()) <= 255)


class Sample(wc.Struct):
    """Exercises the kinds no agent format uses yet."""

    fields_desc = (
        wc.Flag("urgent"),
        wc.UInt("level", 3),
        wc.Const(4, 0b1010, what="version"),
        wc.Count("name_len", 8, of="name"),
        wc.Count("blob_len", 16, of="blob"),
        wc.Text("name", length="name_len"),
        wc.Bytes("blob", length="blob_len"),
        wc.Align(8),
        wc.List("tail", wc.UInt("word", 16)),
    )


def _rules():
    from shim.strategies import RULES

    return {
        **RULES,
        I2PMapping: lambda f, v: st.dictionaries(text, text, max_size=4),
        structures.Destination: lambda f, v: st.sampled_from([k.destination for k in KEYS]),
        (datagrams.PayloadHeader, "magic"): lambda f, v: st.just(datagrams.GZIP_MAGIC),
        (datagrams.PayloadHeader, "flags"): lambda f, v: st.just(0),
        (messages.CreateLeaseSet2, "store_type"): lambda f, v: st.just(structures.STORE_TYPE_LEASESET2),
        (messages.HostLookup, "lookup_type"): lambda f, v: st.sampled_from([messages.LOOKUP_HASH, messages.LOOKUP_HOSTNAME]),
    }


def _declared(base=wc.Struct):
    for sub in base.__subclasses__():
        if "fields_desc" in sub.__dict__:
            yield sub
        yield from _declared(sub)


FORMATS = sorted(set(_declared()), key=lambda c: (c.__module__, c.__name__))


def strategy(cls):
    return values_of(cls, _rules())


def test_both_agents_formats_are_found():
    names = {c.__name__ for c in FORMATS}
    assert {"I1", "Probe", "LocatorList", "PayloadHeader", "LeaseSet2", "CreateLeaseSet2", "RepliableDatagram", "Sample"} <= names
    assert all(c.decode_error is not wc.CodecDecodeError for c in FORMATS if c is not Sample)


@pytest.mark.parametrize("cls", FORMATS, ids=lambda c: f"{c.__module__.split('.')[-1]}.{c.__name__}")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data())
def test_decode_of_encode_is_identity(cls, data):
    value = data.draw(strategy(cls))
    raw = value.to_bytes()
    # an Attr (an option's C bit) travels in the enclosing TLV, not in the body
    carried = {f.name: f.default for f in cls.fields_desc if isinstance(f, wc.Attr)}
    assert cls.from_bytes(raw) == dataclasses.replace(value, **carried)
    cut = data.draw(st.integers(0, max(len(raw) - 1, 0)))
    try:
        cls.from_bytes(raw[:cut])
    except cls.decode_error:
        pass


@pytest.mark.parametrize("cls", FORMATS, ids=lambda c: f"{c.__module__.split('.')[-1]}.{c.__name__}")
@settings(max_examples=150, deadline=None)
@given(raw=st.binary(max_size=500))
def test_random_bytes_raise_only_the_format_error(cls, raw):
    try:
        cls.from_bytes(raw)
    except cls.decode_error:
        pass


def test_encode_errors_are_the_format_errors():
    with pytest.raises(shim.ShimEncodeError):
        shim.ProbeReport(source="not an address", destination="::", nonce=0, data=0).to_bytes()
    with pytest.raises(wc.CodecEncodeError):
        Sample(urgent=True, level=8, name="", blob=b"", tail=()).to_bytes()
    with pytest.raises(structures.DecodeError):
        structures.Certificate.from_bytes(b"\x05\x00\x01\x00")


def test_declaration_errors_surface_at_import():
    with pytest.raises(TypeError, match="not a Count"):
        type("Bad", (wc.Struct,), {"fields_desc": (wc.Bytes("b", length="n"),)})
    with pytest.raises(TypeError, match="undeclared"):
        type("Bad", (wc.Struct,), {"fields_desc": (wc.Count("n", 8, of="x"),)})
