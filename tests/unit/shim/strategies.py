"""Hypothesis strategies derived from the wire field tables (so every message is covered)."""

import ipaddress

from hypothesis import strategies as st

from agents.shim import messages, wire

addresses = st.binary(min_size=16, max_size=16).map(ipaddress.IPv6Address)


def for_field(field, table):
    if isinstance(field, wire.UInt):
        if field.name == "element_len":
            return st.sampled_from([1, 2, 3])
        return st.integers(0, (1 << field.bits) - 1)
    if isinstance(field, wire.Address):
        return addresses
    if isinstance(field, wire.Rest):
        return st.binary(max_size=64)
    if isinstance(field, wire.Record):
        return for_class(field.cls)
    if isinstance(field, wire.Array):
        counter = next(c for c in table if isinstance(c, wire.Count) and c.name == field.count)
        return st.lists(for_field(field.item, table), max_size=min(6, (1 << counter.bits) - 1)).map(tuple)
    raise AssertionError(f"no strategy for {field!r}")


def for_class(cls, extra=None):
    """Build instances of a defined class; arrays sharing a Count get equal lengths."""
    table = cls.LAYOUT
    fields = {f.name: f for f in wire.public_fields(table)}

    @st.composite
    def build(draw):
        values = {}
        sizes = {}
        for name, f in fields.items():
            if isinstance(f, wire.Array):
                n = sizes.setdefault(f.count, draw(st.integers(0, 5)))
                values[name] = tuple(draw(for_field(f.item, table)) for _ in range(n))
            elif isinstance(f, wire.SizedTuples):
                continue
            else:
                values[name] = draw(for_field(f, table))
        for name, f in fields.items():
            if isinstance(f, wire.SizedTuples):
                size = values[f.size]
                element = st.tuples(*[st.integers(0, 255)] * size)
                values[name] = tuple(draw(st.lists(element, max_size=6)))
        if extra:
            values.update({k: draw(v) for k, v in extra.items()})
        return cls(**values)

    return build()


unknown_options = st.builds(
    messages.UnknownOption,
    type=st.integers(0, (1 << 15) - 1).filter(lambda t: t not in messages.OPTIONS),
    data=st.binary(max_size=40),
    critical=st.booleans(),
)
options = st.one_of(
    [for_class(c, {"critical": st.booleans()}) for c in messages.OPTIONS.values()] + [unknown_options]
)
control_messages = st.one_of(
    [for_class(c, {"options": st.lists(options, max_size=4).map(tuple)}) for c in messages.MESSAGES.values()]
)
