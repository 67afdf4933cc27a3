"""Known-answer encodings: sample values of every Shim6 and I2CP format, recorded with an earlier
codec (snapshot.py), must encode to the same bytes and decode back to the same values."""

import json

import pytest

from agents.balancer.messages import FrameDecoder
from agents.shim import messages as m

from .snapshot import DATA, load

ROWS = json.loads(DATA.read_text())


def _decode(codec, cls, raw):
    if codec == "shim":
        return m.decode(raw)
    if codec == "shim-option":
        return m.decode(m.encode(m.Keepalive(receiver_context_tag=1, options=(cls,)))).options[0]
    if codec == "i2cp":
        (msg,) = FrameDecoder().feed(raw)
        return msg
    return type(cls).from_bytes(raw)


def test_every_format_is_sampled():
    names = {row["value"]["$cls"].split(":")[1] for row in ROWS}
    assert set(c.__name__ for c in m.MESSAGES.values()) <= names
    assert {"LeaseSet2", "SessionConfig", "CreateLeaseSet2", "HostReply", "RepliableDatagram"} <= names


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r['value']['$cls'].split(':')[1]}")
def test_encoding_is_byte_identical(row):
    value = load(row["value"])
    raw = bytes.fromhex(row["hex"])
    codec = row["codec"]
    encoded = {"shim": m.encode, "shim-option": m.encode_option, "i2cp": lambda v: v.frame()}.get(codec, lambda v: v.to_bytes())(value)
    assert encoded == raw
    assert _decode(codec, value, raw) == value
