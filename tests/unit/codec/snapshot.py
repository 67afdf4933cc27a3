"""Records known-answer encodings of sample values of every wire format (run once, before a codec
change, to freeze the bytes): ``python -m tests.unit.codec.snapshot``.

``tests/unit/codec/test_known_encodings.py`` checks every row after any change.
Values are stored as JSON with their class named, so the check rebuilds them with whatever
classes the modules define at that time and compares bytes.
"""

from __future__ import annotations

import dataclasses
import importlib
import ipaddress
import json
import sys
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data" / "known-encodings.json"


def dump(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        return {"$cls": f"{cls.__module__}:{cls.__qualname__}", **{f.name: dump(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    if isinstance(value, bytes):
        return {"$b": value.hex()}
    if isinstance(value, ipaddress.IPv6Address):
        return {"$ip6": str(value)}
    if isinstance(value, tuple):
        return [dump(v) for v in value]
    if isinstance(value, dict):
        return {"$map": [[k, dump(v)] for k, v in value.items()]}
    return value


def load(doc: Any) -> Any:
    if isinstance(doc, list):
        return tuple(load(v) for v in doc)
    if isinstance(doc, dict):
        if "$b" in doc:
            return bytes.fromhex(doc["$b"])
        if "$ip6" in doc:
            return ipaddress.IPv6Address(doc["$ip6"])
        if "$map" in doc:
            return {k: load(v) for k, v in doc["$map"]}
        module, name = doc["$cls"].split(":")
        cls = getattr(importlib.import_module(module), name)
        return cls(**{k: load(v) for k, v in doc.items() if k != "$cls"})
    return doc


def samples() -> list[tuple[str, Any, bytes]]:
    """(codec, value, bytes) for a few hypothesis-drawn values of every format."""
    import warnings

    from hypothesis.errors import NonInteractiveExampleWarning

    sys.path.insert(0, str(Path(__file__).parents[1]))  # tests/unit, as pytest arranges it
    from balancer import test_balancer_wire as bw
    from shim import strategies as ss

    from agents.balancer import datagrams, structures
    from agents.shim import messages as m

    warnings.simplefilter("ignore", NonInteractiveExampleWarning)
    out: list[tuple[str, Any, bytes]] = []
    for cls in list(m.MESSAGES.values()):
        strat = ss.for_class(cls)
        out += [("shim", v, m.encode(v)) for v in (strat.example() for _ in range(8))]
    for v in (ss.options.example() for _ in range(40)):
        out.append(("shim-option", v, m.encode_option(v)))
    out += [("shim", m.PayloadHeader(n, t), m.encode(m.PayloadHeader(n, t))) for n, t in ((6, 1), (17, m.MAX_CONTEXT_TAG), (59, 0x123456789ABC))]
    seen: dict[type, int] = {}
    while len(seen) < 13 or min(seen.values()) < 5:
        v = bw.messages.example()
        seen[type(v)] = seen.get(type(v), 0) + 1
        if seen[type(v)] <= 5:
            out.append(("i2cp", v, v.frame()))
    keys = bw.KEYS
    ls = keys.lease_set((structures.Lease2(b"g" * 32, 7, 99),), 1234)
    for v in (keys.destination, keys.destination.certificate, ls, ls.leases[0], ls.keys[0], keys.session_config({"a": "b"}, 5),
              structures.Lease(b"h" * 32, 1, 2), datagrams.RepliableDatagram.signed_by(keys, b"hello"),
              datagrams.PayloadHeader(datagrams.GZIP_MAGIC, 0, 1, 2, 0, 17), datagrams.AppPayload(17, 5, 6, b"data" * 9)):
        out.append(("struct", v, v.to_bytes()))
    return out


def main() -> int:
    rows = [{"codec": codec, "value": dump(value), "hex": raw.hex()} for codec, value, raw in samples()]
    DATA.write_text(json.dumps(rows, indent=0) + "\n")
    print(f"{len(rows)} encodings written to {DATA}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
